"""``rag-retrieval audit``: flag the labels of a training file that a teacher model contradicts."""

from __future__ import annotations

import json
import os

from ..utils.commands import add_labelled_file_options, add_scoring_options, command_parser


def parser():
    p = command_parser("audit", "Score every labelled pair of a data file with a teacher (any reranker or embedding "
                       "model) and flag likely false negatives (a negative scored at or above its query's weakest "
                       "positive) and weak positives (a positive below most of its negatives), most sure first, "
                       "each with its file:line.",
                       ["rag-retrieval audit data/pkgdesc/train.jsonl.xz --format pos_neg --teacher minilm "
                        "--json audit.json --clean train.clean.jsonl"],
                       "score_gap is in the teacher's units (a reranker's logit, a bi-encoder's cosine). --clean "
                       "writes the file without the flagged pairs (records keep their own keys; a record left without "
                       "a positive is dropped); an existing file is kept unless --overwrite.")
    p.add_argument("file", help="the data file (.jsonl, plain or compressed)")
    p.add_argument("--teacher", required=True, help="a reranker or embedding model: folder, hub id or alias (minilm)")
    add_labelled_file_options(p)
    p.add_argument("--json", metavar="REPORT", help='write {"flagged": [{"line", "kind", "text", "score_gap", ...}]}')
    p.add_argument("--clean", metavar="OUT", help="write the file without the flagged pairs to OUT (.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --clean / --json file")
    p.add_argument("--show", type=int, default=10, help="flags printed (default 10)")
    add_scoring_options(p)
    return p


def main(argv=None) -> dict:
    from ..eval.audit import audit, read_groups, report, write_clean
    from ..eval.retrieval import pair_scores
    from ..models.hub import check_model
    from .evaluate import load_model

    p = parser()
    args = p.parse_args(argv)
    for option, out in (("--clean", args.clean), ("--json", args.json)):
        if out and os.path.exists(out) and not args.overwrite:
            p.error(f"{option} {out} exists: give another file or --overwrite")
        if out and os.path.abspath(out) == os.path.abspath(args.file):
            p.error(f"{option} {out} is the audited file itself: give another file")
    check_model(args.teacher, "--teacher")
    groups = read_groups(args.file, args.format, args.columns, args.label_range, args.max_queries)  # before loading
    teacher = load_model(args.teacher, args.dtype, args.max_length)
    flat = list(pair_scores(teacher, [(q, pair.text) for q, pairs in groups for pair in pairs], args.batch_size))
    flat = [s[-1] if isinstance(s, list) else float(s) for s in flat]  # layerwise: the last layer's
    scores, start = [], 0
    for _, pairs in groups:
        scores.append(flat[start : start + len(pairs)])
        start += len(pairs)
    flags = audit(groups, scores)
    n_pairs = sum(len(pairs) for _, pairs in groups)
    kinds = {k: sum(f.kind == k for f in flags) for k in ("false_negative", "weak_positive")}
    print(f"{len(groups)} queries, {n_pairs} pairs: {kinds['false_negative']} likely false negatives, "
          f"{kinds['weak_positive']} weak positives (teacher {args.teacher})")
    for f in flags[: args.show]:
        print(f"  {f.line}  {f.kind}  gap {f.score_gap:.3f}  query: {f.query[:70]!r}  text: {f.text[:90]!r}")
    result = {"queries": len(groups), "pairs": n_pairs, **kinds, **report(flags)}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1, ensure_ascii=False)
    if args.clean:
        counts = write_clean(args.file, args.format, flags, args.clean, args.columns)
        result["clean"] = counts
        print(f"{args.clean}: {counts['records'] - counts['records_dropped']} of {counts['records']} records, "
              f"{counts['pairs_dropped']} pairs dropped")
    return result
