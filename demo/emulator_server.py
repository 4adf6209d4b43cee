"""The emulated account's process: moto's server app, plus a few admin routes under /_demo/ for the harness.

Run by demo.emulator as `python -m demo.emulator_server --host localhost --port N`, one account per process
(MOTO_ACCOUNT_ID). The admin routes reach moto's backends where its API falls short:

- POST /_demo/ec2/image: set attributes that moto's RegisterImage drops (it keeps only name and description),
  so the emulated image is what EC2 would have registered (virtualization type, root device, image location);
- GET /_demo/sns/published?topic=ARN: the messages published to a topic as the publisher sent them. An SQS
  subscriber gets the `default` text of a MessageStructure=json message; this is how the harness shows the
  `email` text, which moto delivers nowhere;
- GET /_demo/health.

moto's CopyImage forgets its source, so its DescribeImages names none for a copy; EC2 does, and the guard tags
only an image that EC2 says is a copy of the source the event names: `copies_name_their_source` supplies them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

ADMIN_PREFIX = "/_demo/"
READY_LINE = "ami-guard-demo emulator ready"
IMAGE_ATTRIBUTES = frozenset(
    {"virtualization_type", "root_device_type", "root_device_name", "image_location", "architecture", "hypervisor"}
)

StartResponse = Callable[..., Any]


def _json(start_response: StartResponse, status: str, body: Any) -> Iterable[bytes]:
    data = json.dumps(body, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _account() -> str:
    return os.environ["MOTO_ACCOUNT_ID"]


def _patch_image(request: dict[str, Any]) -> dict[str, Any]:
    from moto.ec2.models import ec2_backends

    unknown = set(request["attributes"]) - IMAGE_ATTRIBUTES
    if unknown:
        raise ValueError(f"not settable here: {sorted(unknown)}")
    image = ec2_backends[_account()][request["region"]].amis[request["image_id"]]
    for name, value in request["attributes"].items():
        setattr(image, name, value)
    return {name: getattr(image, name) for name in sorted(IMAGE_ATTRIBUTES)}


def copies_name_their_source() -> Callable[[], None]:
    """Make moto's copies carry SourceImageId / SourceImageRegion, as EC2's DescribeImages returns them for a copy.

    moto's CopyImage (moto/ec2/models/amis.py) keeps only virtualization, architecture, name and description;
    its serializer reads each response member from the model's snake_case attribute, so setting
    `source_image_id` / `source_image_region` on the copy is enough. Returns the undo.
    """
    from moto.ec2.models.amis import AmiBackend

    original = AmiBackend.copy_image

    def copy_image(self: Any, source_image_id: str, source_region: str, *args: Any, **kwargs: Any) -> Any:
        ami = original(self, source_image_id, source_region, *args, **kwargs)
        ami.source_image_id = source_image_id
        ami.source_image_region = source_region
        return ami

    AmiBackend.copy_image = copy_image  # type: ignore[method-assign]

    def undo() -> None:
        AmiBackend.copy_image = original  # type: ignore[method-assign]

    return undo


def _published(topic_arn: str) -> list[dict[str, Any]]:
    from moto.sns.models import sns_backends

    region = topic_arn.split(":")[3]
    topic = sns_backends[_account()][region].topics[topic_arn]
    return [
        {"message_id": message_id, "message": message, "subject": subject, "attributes": attributes}
        for message_id, message, subject, attributes, _group in topic.sent_notifications
    ]


def admin_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"][len(ADMIN_PREFIX) :]
    try:
        if path == "health":
            return _json(start_response, "200 OK", {"account": _account()})
        if path == "ec2/image" and environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            return _json(start_response, "200 OK", _patch_image(json.loads(environ["wsgi.input"].read(length))))
        if path == "sns/published":
            topic = parse_qs(environ.get("QUERY_STRING", "")).get("topic", [""])[0]
            return _json(start_response, "200 OK", _published(topic))
    except (KeyError, ValueError) as exc:
        return _json(start_response, "404 Not Found", {"error": f"{type(exc).__name__}: {exc}"})
    return _json(start_response, "404 Not Found", {"error": f"no admin route {path!r}"})


def application(moto_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(ADMIN_PREFIX):
            return admin_app(environ, start_response)
        return moto_app(environ, start_response)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if "MOTO_ACCOUNT_ID" not in os.environ:
        print("MOTO_ACCOUNT_ID must name the emulated account", file=sys.stderr)
        return 2
    copies_name_their_source()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO)  # the access log: the tail printed on failure
    server = make_server(
        args.host,
        args.port,
        application(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    print(f"{READY_LINE} on http://{args.host}:{args.port} (account {os.environ['MOTO_ACCOUNT_ID']})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
