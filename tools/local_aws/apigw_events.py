"""``python -m tools.local_aws.apigw_events`` (make events): API Gateway v2 events for every sample body.

A sample ``events/<route suffix>/<name>.json`` is the body AIRUDDER posts to ``/webhooks/<route suffix>``;
this writes the event the deployed function receives for it to ``events/apigw/<route suffix>/<name>.json``
(header ``x-webhook-token: local-dev-token``), so ``sam local invoke -e events/apigw/...`` works.
Output is deterministic (request id and time derived from the sample's path): re-running changes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

from tools.local_aws.gateway import Route, api_id_for, build_event, load_routes, match_route, new_request_id
from tools.local_aws.moto_server import DEFAULT_STACK_NAME, DEFAULT_TOKEN
from tools.local_aws.template import load_template, merge_globals

log = logging.getLogger("tools.local_aws.apigw_events")

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT_DIR = "apigw"
# Folders of events/ that hold other events than webhook bodies (e.g. a DynamoDB stream batch).
NOT_WEBHOOK_DIRS = (OUTPUT_DIR, "stream")
ROUTE_PREFIX = "/webhooks/"
BASE_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z; each sample gets a fixed offset within a day


def sample_files(events_root: Path) -> list[Path]:
    """Sample bodies under ``events_root`` (events/apigw/, events/stream/ and non-.json files left out)."""
    found = []
    for path in sorted(events_root.rglob("*.json")):
        relative = path.relative_to(events_root)
        if relative.parts[0] in NOT_WEBHOOK_DIRS or len(relative.parts) < 2 or not path.is_file():
            continue
        found.append(path)
    return found


def event_for(sample: Path, events_root: Path, routes: list[Route], *, token: str) -> dict[str, object] | None:
    relative = sample.relative_to(events_root)
    path = ROUTE_PREFIX + "/".join(relative.parent.parts)
    found = match_route(routes, "POST", path)
    if found is None:
        log.warning("%s: no route of the template takes POST %s; skipped", relative.as_posix(), path)
        return None
    route = found[0]
    seed = relative.as_posix()
    offset_ms = int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % 86_400_000
    headers = [
        ("content-type", "application/json"),
        ("user-agent", "airudder-webhook-sample"),
        ("x-webhook-token", token),
    ]
    return build_event(
        "POST",
        path,
        None,
        headers,
        sample.read_bytes(),
        route,
        source_ip="203.0.113.10",
        request_id=new_request_id(seed),
        time_epoch_ms=BASE_EPOCH_MS + offset_ms,
        api_id=api_id_for(DEFAULT_STACK_NAME, route.api_id),
    )


def generate(
    events_root: str | Path,
    template_path: str | Path = REPO_ROOT / "template.yaml",
    *,
    token: str = DEFAULT_TOKEN,
    prune: bool = False,
) -> list[Path]:
    """Write events/apigw/... for every sample; returns the files written or already up to date."""
    root = Path(events_root)
    template = merge_globals(load_template(template_path))
    routes = load_routes(template)
    written: list[Path] = []
    for sample in sample_files(root):
        event = event_for(sample, root, routes, token=token)
        if event is None:
            continue
        target = root / OUTPUT_DIR / sample.relative_to(root)
        text = json.dumps(event, indent=2, ensure_ascii=False) + "\n"
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            log.info("wrote %s", target.relative_to(root).as_posix())
        written.append(target)
    output = root / OUTPUT_DIR
    if output.is_dir():
        keep = set(written)
        for stale in sorted(output.rglob("*.json")):
            if stale not in keep:
                if prune:
                    stale.unlink()
                    log.info("removed %s (no sample any more)", stale.relative_to(root).as_posix())
                else:
                    log.warning("%s has no sample any more (--prune removes it)", stale.relative_to(root).as_posix())
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.local_aws.apigw_events", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--events-dir", default=str(REPO_ROOT / "events"))
    parser.add_argument("--template", default=str(REPO_ROOT / "template.yaml"))
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--prune", action="store_true", help="delete events/apigw files whose sample is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    written = generate(args.events_dir, args.template, token=args.token, prune=args.prune)
    sys.stdout.write(f"{len(written)} API Gateway events in {Path(args.events_dir) / OUTPUT_DIR}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
