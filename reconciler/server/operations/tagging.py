"""TagResource, UntagResource, ListTagsForResource, on flywheels, datasets and endpoints.

Tags are declared state like the rest: a flywheel's under ``tags:`` in its spec, a dataset's in
its entry there, an endpoint's in its file; each change is one commit.
"""

from __future__ import annotations

from reconciler.api import declaring
from reconciler.core.spec import MAX_TAGS
from reconciler.server.context import Answer, Context, Params, arn
from reconciler.server.operations.common import tag_list, tags_from
from reconciler.server.protocol import AwsError

KINDS = ("flywheel", "dataset", "endpoint")


def tag_resource(ctx: Context, params: Params) -> Answer:
    target = arn(params, "ResourceArn", *KINDS)
    new = tags_from(params["Tags"])

    def add(current: dict[str, str]) -> dict[str, str]:
        tags = {**current, **new}
        if len(tags) > MAX_TAGS:
            raise AwsError("TooManyTagsException", f"{len(tags)} tags (existing and new): a "
                           f"resource has at most {MAX_TAGS}")
        return tags

    declaring.change_tags(ctx.repo, target, add, "TagResource")
    return {}


def untag_resource(ctx: Context, params: Params) -> Answer:
    target = arn(params, "ResourceArn", *KINDS)
    keys = set(params["TagKeys"])
    if len(keys) > MAX_TAGS:
        raise AwsError("TooManyTagKeysException", f"{len(keys)} tag keys: at most {MAX_TAGS}")
    declaring.change_tags(ctx.repo, target,
                          lambda tags: {k: v for k, v in tags.items() if k not in keys},
                          "UntagResource")
    return {}


def list_tags_for_resource(ctx: Context, params: Params) -> Answer:
    target = arn(params, "ResourceArn", *KINDS)
    return {"ResourceArn": params["ResourceArn"],
            "Tags": tag_list(declaring.tags_of(ctx.repo, target))}


OPERATIONS = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
