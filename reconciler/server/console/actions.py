"""The console's actions, each the API's own operation with the same parameters, so a click
and a boto3 call take one code path: Make active model is UpdateFlywheel, Run flywheel is
StartFlywheelIteration, Create dataset is CreateDataset's checks and commit (with the file from
the form instead of S3). Each is a commit or a request; the reconciler then acts.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.datastructures import UploadFile
from starlette.responses import Response

from reconciler.api import declaring
from reconciler.core.arns import flywheel_arn, model_arn
from reconciler.errors import FlywheelError, NotFoundError
from reconciler.server.console import pages, rows
from reconciler.server.console.web import Call, redirect, set_session
from reconciler.server.operations.datasets import new_dataset
from reconciler.server.operations.flywheels import update_flywheel
from reconciler.server.operations.iterations import start_flywheel_iteration
from reconciler.server.protocol import AwsError


def _back(path: str, **done: str) -> Response:
    return redirect(f"{path}?{urlencode(done)}")


def make_active(call: Call) -> Response:
    name, version = call.params["name"], call.field("version")
    update_flywheel(call.ctx, {"FlywheelArn": flywheel_arn(name),
                               "ActiveModelArn": model_arn(name, version) or ""})
    return _back(_return_to(call, rows.flywheel_href(name)), done="pinned", version=version)


def run_flywheel(call: Call) -> Response:
    """Refused (one at a time, no new data…) on the flywheel's own page, saying why."""
    name = call.params["name"]
    try:
        answer = start_flywheel_iteration(call.ctx, {"FlywheelArn": flywheel_arn(name)})
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":
            raise
        return pages.flywheel(call, problem=exc.message, status=409)
    except FlywheelError as exc:
        if isinstance(exc, NotFoundError):
            raise
        return pages.flywheel(call, problem=str(exc), status=409)
    return _back(rows.flywheel_href(name), done="started",
                 iteration=answer["FlywheelIterationId"])


def create_dataset(call: Call) -> Response:
    """Declared only when the file reads and checks; otherwise the form again, every problem
    listed with its row."""
    name = call.params["name"]
    entered = {key: call.field(key) for key in ("dataset_name", "dataset_type", "description")}
    upload = call.form.get("file") if call.form is not None else None
    if not isinstance(upload, UploadFile) or not upload.filename:
        return pages.datasets(call, errors=["Choose a CSV file to upload."], status=400,
                              entered=entered)
    try:
        dataset = new_dataset(name, entered["dataset_name"].strip(),
                              entered["dataset_type"] or "TRAIN", entered["description"])
        declared, documents = declaring.upload_dataset(call.ctx.repo, name, dataset,
                                                       upload.file, shown=upload.filename)
    except AwsError as exc:
        return pages.datasets(call, errors=[exc.message], status=400, entered=entered)
    except FlywheelError as exc:
        return pages.datasets(call, errors=exc.listed(), status=400, entered=entered)
    return _back(f"{rows.flywheel_href(name)}/datasets", done="dataset", dataset=dataset.name,
                 documents=str(documents), commit=(declared.commit or "")[:12])


def _return_to(call: Call, default: str) -> str:
    """Back to the page the form was on, when it is one of this flywheel's."""
    wanted = call.field("return_to")
    return wanted if wanted.startswith(default + "/") or wanted == default else default


# signing in ---------------------------------------------------------------------------------


def login_page(call: Call) -> Response:
    return call.render("login.html", title="Sign in", next=_next(call.arg("next")),
                       problem=None, key_id="")


def login(call: Call) -> Response:
    key_id = call.field("access_key_id").strip()
    session = call.guard.sign_in(key_id, call.field("secret_access_key"))
    if session is None:
        return call.render("login.html", status=401, title="Sign in", key_id=key_id[:128],
                           next=_next(call.field("next")),
                           problem="That access key id and secret access key do not match "
                                   "the server's credentials.")
    response = redirect(_next(call.field("next")))
    set_session(response, call.guard, session)
    return response


def logout(call: Call) -> Response:
    response = redirect("/login" if call.guard.sign_in_required else "/")
    set_session(response, call.guard, call.guard.new_session())
    return response


def _next(path: str) -> str:
    """Only a path on this server (never ``//elsewhere`` or a full URL)."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


__all__ = ["create_dataset", "login", "login_page", "logout", "make_active", "run_flywheel"]
