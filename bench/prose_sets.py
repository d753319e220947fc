#!/usr/bin/env python3
"""Questions only prose answers (install, upgrade, why, FAQ, contributing, security), hand-written
over three trees of the eval sets, to measure what the prose weight (``doc_weight``) costs: the
eval sets' gold is code by construction, so lowering that weight looks free there.

Writes OUT/<set>/queries.jsonl (agent-kind queries, category "prose", the doc files as targets)
and OUT/<set>/corpus, a link to the tree under EVAL (``../shared/eval/build_mirror_sets.sh``'s
output). Score with ``python bench/retrieval.py OUT/click OUT/express OUT/cobra --home H
[--set doc_weight=W]`` (NDCG@10 as for the agent sets).

usage: python bench/prose_sets.py EVAL OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SETS: dict[str, tuple[str, list[tuple[str, list[str]]]]] = {
    "click": (
        "git/pallets+click/corpus",
        [
            ("how do I install click", ["docs/quickstart.md"]),
            ("why use click instead of argparse or docopt", ["docs/why.md"]),
            ("what changes when upgrading from click 8.3 to 9.0", ["docs/upgrade-guides.md"]),
            ("shell variable expansion on Windows", ["docs/faqs.md"]),
            ("UnicodeEncodeError when printing on the Windows console", ["docs/faqs.md", "docs/wincmd.md"]),
            ("third-party projects and extensions for click", ["docs/contrib.md"]),
            ("should a command line interface prefer options over arguments", ["docs/design-opinions.md"]),
            ("supporting several click versions from one library", ["docs/support-multiple-versions.md"]),
            ("why and how to use a virtualenv", ["docs/virtualenv.md"]),
            ("packaging a click script as an installable entry point", ["docs/entry-points.md"]),
            ("building a standalone native installer for a click app", ["docs/standalone-apps.md"]),
            ("extra test environments for developing click itself", ["docs/contributing.md"]),
        ],
    ),
    "express": (
        "git/expressjs+express/corpus",
        [
            ("how do I install express", ["Readme.md"]),
            ("what changed in the 5.0.0 release", ["History.md"]),
            ("how to run the express test suite", ["Readme.md"]),
        ],
    ),
    "cobra": (
        "agent/cobra/corpus",
        [
            ("projects that use cobra", ["site/content/projects_using_cobra.md"]),
            ("how to report a security vulnerability", ["SECURITY.md"]),
            ("how to contribute to cobra", ["CONTRIBUTING.md"]),
            (
                "which shells are supported for completion and how to install completion scripts",
                ["site/content/completions/_index.md"],
            ),
        ],
    ),
}


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    eval_root, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    for name, (tree, questions) in SETS.items():
        corpus = eval_root / tree
        missing = [g for _, gold in questions for g in gold if not (corpus / g).is_file()]
        if missing:
            sys.exit(f"{name}: not in {corpus}: {', '.join(missing)}")
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / "corpus"
        if not link.exists():
            link.symlink_to(corpus)
        lines = [
            {
                "kind": "agent",
                "category": "prose",
                "q": q,
                "targets": [{"path": g, "orig": g, "in_corpus": True} for g in gold],
            }
            for q, gold in questions
        ]
        (folder / "queries.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        print(json.dumps({"set": name, "queries": len(lines), "corpus": str(corpus)}))


if __name__ == "__main__":
    main()
