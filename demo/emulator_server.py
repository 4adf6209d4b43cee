"""The emulated account's process: moto's server app, plus a few admin routes under /_demo/ for the harness.

Run by demo.emulator as `python -m demo.emulator_server --host localhost --port N`, one account per process
(MOTO_ACCOUNT_ID). The admin routes reach moto's backends where its API falls short:

- POST /_demo/ec2/image: set attributes that moto's RegisterImage drops (it keeps only name and description),
  so the emulated image is what EC2 would have registered (virtualization type, root device, image location);
- GET /_demo/sns/published?topic=ARN: the messages published to a topic as the publisher sent them. An SQS
  subscriber gets the `default` text of a MessageStructure=json message; this is how the harness shows the
  `email` text, which moto delivers nowhere;
- GET /_demo/iam/refused?since=N: the requests moto's access control refused (once IAM is enforced, see
  demo.iam_enforcement), from the N-th on: access key, action, resource, error. moto answers the caller with the
  error only; this is how the runner tells a function's refused call from the function's own handling of it;
- GET /_demo/health.

In multi-account mode (`--multi-account`, the organization demo: no MOTO_ACCOUNT_ID, each call lands in the
account of its credentials) the image and topic routes take the account (`account` in the body or query), and
demo.org_patches adds its patches and two routes: POST /_demo/iam/stand-in (register a function's action-level
stand-in role and the deployed role it stands in for) and GET /_demo/iam/judged (the cross-account AssumeRole
calls the harness judged).

And three patches of moto's models, each a workaround for something moto does not do as AWS does:
- CopyImage records the source (`copies_name_their_source`: DescribeImages then answers SourceImageId and
  SourceImageRegion for the copy, as EC2 does and as the guard checks before tagging; moto 5.2.5 leaves them out);
- every request moto's access control refuses is recorded for /_demo/iam/refused;
- the signature of a request without a body is checked against an empty payload: for REST GETs (Lambda's
  GetFunction, ListFunctions...) moto 5.2.5 hashes the request's header dict instead, and refuses every such
  request with SignatureDoesNotMatch once IAM is enforced.
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

REFUSED: list[dict[str, str]] = []
"""Each request moto's access control refused, in order (list.append is atomic: the server is threaded)."""


def _json(start_response: StartResponse, status: str, body: Any) -> Iterable[bytes]:
    data = json.dumps(body, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _account(given: str | None = None) -> str:
    """The account a route is about: the one given (multi-account mode), else the server's only account."""
    return given or os.environ["MOTO_ACCOUNT_ID"]


def _patch_image(request: dict[str, Any]) -> dict[str, Any]:
    from moto.ec2.models import ec2_backends

    unknown = set(request["attributes"]) - IMAGE_ATTRIBUTES
    if unknown:
        raise ValueError(f"not settable here: {sorted(unknown)}")
    image = ec2_backends[_account(request.get("account"))][request["region"]].amis[request["image_id"]]
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

    region, account = topic_arn.split(":")[3:5]
    topic = sns_backends[_account(account if "MOTO_ACCOUNT_ID" not in os.environ else None)][region].topics[topic_arn]
    return [
        {"message_id": message_id, "message": message, "subject": subject, "attributes": attributes}
        for message_id, message, subject, attributes, _group in topic.sent_notifications
    ]


def _record_refusals() -> None:
    """Wrap moto's authorization step (every service's request passes through it) to keep what it refused."""
    from moto.core.authorization import ActionAuthenticatorMixin

    authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def recorded(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        try:
            authorize(self, iam_request_cls, resource)
        except Exception as exc:
            REFUSED.append(_refusal(self, resource, exc))
            raise

    ActionAuthenticatorMixin._authenticate_and_authorize_action = recorded  # type: ignore[method-assign]


def _refusal(response: Any, resource: str, exc: Exception) -> dict[str, str]:
    # Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, SignedHeaders=..., Signature=...
    authorization = str(response.headers.get("Authorization") or "")
    scope = authorization.partition("Credential=")[2].partition(",")[0].split("/")
    try:
        action = str(response._get_action())
    except Exception:  # the refusal is worth recording even when the action cannot be named
        action = "?"
    return {
        "access_key_id": scope[0] if scope else "",
        "action": f"{scope[3] if len(scope) > 3 else '?'}:{action}",
        "resource": resource,
        "error": str(getattr(exc, "error_type", type(exc).__name__)),
        "message": str(getattr(exc, "message", exc))[:500],
    }


def _sign_bodiless_requests_as_sent() -> None:
    from moto.iam.access_control import IAMRequestBase

    create = IAMRequestBase._create_aws_request

    def create_as_sent(self: Any) -> Any:
        request = create(self)
        if self._method in ("GET", "HEAD", "DELETE") and not self._body:
            request.data = b""
        return request

    IAMRequestBase._create_aws_request = create_as_sent  # type: ignore[method-assign]


def admin_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"][len(ADMIN_PREFIX) :]
    try:
        if path == "health":
            return _json(start_response, "200 OK", {"account": os.environ.get("MOTO_ACCOUNT_ID", "")})
        if path == "ec2/image" and environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            return _json(start_response, "200 OK", _patch_image(json.loads(environ["wsgi.input"].read(length))))
        if path == "sns/published":
            topic = parse_qs(environ.get("QUERY_STRING", "")).get("topic", [""])[0]
            return _json(start_response, "200 OK", _published(topic))
        if path == "iam/refused":
            since = int(parse_qs(environ.get("QUERY_STRING", "")).get("since", ["0"])[0])
            refused = list(REFUSED)
            return _json(start_response, "200 OK", {"total": len(refused), "refused": refused[since:]})
        if path == "iam/stand-in" and environ["REQUEST_METHOD"] == "POST" and "MOTO_ACCOUNT_ID" not in os.environ:
            from demo import org_patches

            length = int(environ.get("CONTENT_LENGTH") or 0)
            request = json.loads(environ["wsgi.input"].read(length))
            org_patches.STAND_INS[str(request["stand_in"])] = str(request["role"])
            return _json(start_response, "200 OK", {"registered": len(org_patches.STAND_INS)})
        if path == "iam/judged" and "MOTO_ACCOUNT_ID" not in os.environ:
            from demo import org_patches

            return _json(start_response, "200 OK", list(org_patches.JUDGED))
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
    parser.add_argument(
        "--multi-account", action="store_true", help="no MOTO_ACCOUNT_ID: each call lands in its credentials' account"
    )
    args = parser.parse_args(argv)
    if args.multi_account == ("MOTO_ACCOUNT_ID" in os.environ):
        print("MOTO_ACCOUNT_ID must name the emulated account (and be unset with --multi-account)", file=sys.stderr)
        return 2
    copies_name_their_source()
    from demo import ec2_gaps  # the posture sweep's reads

    ec2_gaps.install()
    _record_refusals()
    _sign_bodiless_requests_as_sent()
    if args.multi_account:
        from demo import org_patches

        org_patches.install(REFUSED.append)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO)  # the access log: the tail printed on failure
    server = make_server(
        args.host,
        args.port,
        application(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    accounts = "every account" if args.multi_account else f"account {os.environ['MOTO_ACCOUNT_ID']}"
    print(f"{READY_LINE} on http://{args.host}:{args.port} ({accounts})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
