"""One Lambda invocation in a fresh interpreter: `python -I -S -B lambda_host.py REQUEST_FILE`.

Started by demo.runner for every invocation. `-I -S` keeps this project out of the import path: no site-packages
(so not the editable install of functions/), no PYTHONPATH, no current directory. The path is then built the way
Lambda builds it: the deployed package first, the layer, the standard library, the runtime's packages. Standard
library only, until the handler is imported from the deployed package.

The request file names the handler, the task root, the import path, the event and the context; the outcome is
written to the result file it names, in Lambda's own error shape. Everything the function prints is its log.
"""

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    def __init__(self, context: dict[str, Any], deadline: float) -> None:
        self.function_name = context["function_name"]
        self.function_version = context["function_version"]
        self.invoked_function_arn = context["invoked_function_arn"]
        self.memory_limit_in_mb = int(context["memory_limit_in_mb"])
        self.aws_request_id = context["aws_request_id"]
        self.log_group_name = context["log_group_name"]
        self.log_stream_name = context["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _write(path: str, outcome: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(outcome, f, default=str)


def _error(path: str, error_type: str, message: str, trace: list[str] | None = None) -> int:
    _write(path, {"ok": False, "errorType": error_type, "errorMessage": message, "stackTrace": trace or []})
    print(f"[ERROR] {error_type}: {message}", file=sys.stderr)
    for line in trace or []:
        print(line.rstrip("\n"), file=sys.stderr)
    return 1


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    result_path = request["result_file"]
    task_root = os.path.realpath(request["task_root"])
    sys.path[:] = [task_root, *request["layer_paths"], *sys.path, *request["runtime_paths"]]
    deadline = time.monotonic() + float(request["timeout_seconds"])

    module_name, _, function_name = request["handler"].rpartition(".")
    if not module_name:
        return _error(result_path, "Runtime.MalformedHandlerName", f"Bad handler '{request['handler']}'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return _error(result_path, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    except Exception as exc:
        trace = traceback.format_exception(exc)
        return _error(result_path, f"Runtime.UserCodeSyntaxError/{type(exc).__name__}", str(exc), trace)
    origin = os.path.realpath(getattr(module, "__file__", "") or "")
    if not origin.startswith(task_root + os.sep):
        message = f"'{module_name}' was imported from {origin}, outside the deployment package {task_root}"
        return _error(result_path, "Runtime.ImportModuleError", message)
    handler = getattr(module, function_name, None)
    if not callable(handler):
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        return _error(result_path, "Runtime.HandlerNotFound", message)

    context = LambdaContext(request["context"], deadline)
    try:
        result = handler(request["event"], context)
    except Exception as exc:
        return _error(result_path, type(exc).__name__, str(exc), traceback.format_exception(exc))
    _write(result_path, {"ok": True, "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
