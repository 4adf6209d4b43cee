"""Where the real CloudTrail records of other projects live: ../shared/cloudtrail-samples beside the clone.

They are read in place, never copied into this repository. A user's clone has no ../shared/: the tests
that need the corpus are then skipped with this reason, and everything else runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("AMI_GUARD_SAMPLES", REPO.parent / "shared" / "cloudtrail-samples"))
AVAILABLE = SAMPLES.is_dir() and any(SAMPLES.glob("*.json"))
SKIP_REASON = f"real CloudTrail samples not found at {SAMPLES} (set AMI_GUARD_SAMPLES; CI always has them)"

needs_corpus = pytest.mark.skipif(not AVAILABLE, reason=SKIP_REASON)


def sample_files() -> list[Path]:
    return sorted(SAMPLES.glob("*.json")) if AVAILABLE else []
