"""Expand a SAM template into plain CloudFormation, offline: for the local stack, `cfn-lint` and checkov.

cfn-lint and `sam validate --lint` look at AWS::Serverless::* resources without expanding them, so a
wrong !Ref or !GetAtt inside a function (in Globals too) passes both. Running the SAM transform here
first and linting its output catches it.

Offline: a fake region and account, local code paths replaced by a fake S3 URI (as `sam validate`
does), and the managed-policy names resolved from the map bundled with aws-sam-translator (no IAM call).
A policy name that map does not know fails the run instead of asking IAM.

The local stack (tools.local_aws.stack) gives the expansion to moto's CloudFormation. Usage:

    python -m tools.local_aws.expand_sam [template.yaml] [-o build/template.expanded.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from tools.local_aws.template import load_template

FAKE_REGION = "us-east-1"
FAKE_ACCOUNT_ID = "123456789012"
FAKE_S3_URI = "s3://expand-sam-placeholder/code.zip"
FAKE_IMAGE_URI = f"{FAKE_ACCOUNT_ID}.dkr.ecr.{FAKE_REGION}.amazonaws.com/placeholder:latest"

# SAM resource type -> properties that may hold a local path (uploaded by `sam package`).
_LOCAL_PATH_PROPERTIES: dict[str, tuple[str, ...]] = {
    "AWS::Serverless::Function": ("CodeUri",),
    "AWS::Serverless::LayerVersion": ("ContentUri",),
    "AWS::Serverless::Api": ("DefinitionUri",),
    "AWS::Serverless::HttpApi": ("DefinitionUri",),
    "AWS::Serverless::StateMachine": ("DefinitionUri",),
}
_GLOBALS_TYPE = {
    "Function": "AWS::Serverless::Function",
    "Api": "AWS::Serverless::Api",
    "HttpApi": "AWS::Serverless::HttpApi",
    "StateMachine": "AWS::Serverless::StateMachine",
    "LayerVersion": "AWS::Serverless::LayerVersion",
}


def _replace_local_paths(template: dict[str, Any]) -> None:
    def fix(resource_type: str, properties: Any) -> None:
        if not isinstance(properties, dict):
            return
        if resource_type == "AWS::Serverless::Function" and properties.get("PackageType") == "Image":
            properties.setdefault("ImageUri", FAKE_IMAGE_URI)
            return
        for key in _LOCAL_PATH_PROPERTIES.get(resource_type, ()):
            value = properties.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                properties[key] = FAKE_S3_URI

    for section, settings in (template.get("Globals") or {}).items():
        if section in _GLOBALS_TYPE:
            fix(_GLOBALS_TYPE[section], settings)
    for resource in (template.get("Resources") or {}).values():
        if isinstance(resource, dict):
            props = resource.get("Properties")
            if resource.get("Type") == "AWS::Serverless::Function" and props is None:
                props = resource["Properties"] = {}
            fix(str(resource.get("Type")), props)


def expand(template: dict[str, Any], region: str = FAKE_REGION, account_id: str = FAKE_ACCOUNT_ID) -> dict[str, Any]:
    """Return the CloudFormation the SAM transform makes of `template` (which is left unchanged)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(template)
    if "Transform" not in sam:
        return sam
    _replace_local_paths(sam)

    # Credentials are never used: every lookup below is answered locally.
    session = boto3.session.Session(region_name=region, aws_access_key_id="offline", aws_secret_access_key="offline")

    def no_iam_lookup() -> dict[str, str]:
        # Called only for a managed-policy name missing from the translator's bundled map.
        raise SystemExit(
            "expand_sam: a managed policy name in Policies is not in aws-sam-translator's bundled map; "
            "use its full ARN (or a SAM policy template) instead"
        )

    translator = Translator(managed_policy_map=None, sam_parser=Parser(), plugins=[], boto_session=session)
    try:
        return translator.translate(
            sam,
            parameter_values={"AWS::AccountId": account_id, "AWS::Region": region},
            get_managed_policy_map=no_iam_lookup,
        )
    except InvalidDocumentException as exc:
        lines = [f"expand_sam: the SAM transform rejected the template: {exc}"]
        lines += [f"  - {cause}" for cause in exc.causes]
        raise SystemExit("\n".join(lines)) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("template", nargs="?", default="template.yaml", type=Path)
    parser.add_argument("-o", "--output", default=Path("build/template.expanded.json"), type=Path)
    parser.add_argument("--region", default=FAKE_REGION)
    parser.add_argument("--account-id", default=FAKE_ACCOUNT_ID)
    args = parser.parse_args(argv)

    expanded = expand(load_template(args.template), region=args.region, account_id=args.account_id)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(expanded, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    resources = expanded.get("Resources", {})
    print(f"expand_sam: {args.template} -> {args.output} ({len(resources)} CloudFormation resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
