"""``rag-retrieval calibrate``: fit a reranker's score -> probability map on labelled pairs (Platt scaling)."""

from __future__ import annotations

import os

from ..utils.commands import add_labelled_file_options, add_scoring_options, command_parser


def parser():
    p = command_parser("calibrate", "Fit p = sigmoid(a * score + b) to a reranker's scores of labelled pairs "
                       "(relevant = label > 0) and write it to calibration.json in the model folder: "
                       "compute_score(..., normalize=True) of every Reranker then returns these probabilities.",
                       ["rag-retrieval calibrate --model outputs/reranker/minilm_pkgdesc --data data/pkgdesc/dev.jsonl.xz "
                        "--test data/pkgdesc/test.jsonl.xz --target-recall 0.9"],
                       "Prints the expected calibration error (ECE, 10 bins) and Brier score of the plain sigmoid "
                       "and of the fitted map, on --data and on --test (pairs the fit has not seen), and with "
                       "--target-recall R the probability (and raw score) above which R of the relevant pairs of "
                       "--data are kept: a threshold for dropping irrelevant context. sentence-transformers and "
                       "FlagEmbedding ignore calibration.json; an existing one is replaced.")
    p.add_argument("--model", required=True, help="a reranker folder (saved by this project, FlagEmbedding or "
                                                  "sentence-transformers): calibration.json is written into it")
    p.add_argument("--data", required=True, help="labelled pairs to fit on (a reranking file, not the training data)")
    p.add_argument("--test", help="another labelled file to measure the calibration on (default: none)")
    add_labelled_file_options(p)
    p.add_argument("--target-recall", type=float, help="print the threshold that keeps this share of the relevant pairs")
    add_scoring_options(p)
    return p


def main(argv=None) -> dict:
    from .. import kinds
    from ..eval.evaluators import read_examples
    from ..infer import calibration
    from ..models.hub import check_model

    p = parser()
    args = p.parse_args(argv)
    if args.target_recall is not None and not 0 < args.target_recall <= 1:
        p.error(f"--target-recall must be in (0, 1], got {args.target_recall}")
    path = check_model(args.model, "--model")
    if not os.path.isdir(path):
        p.error(f"--model {args.model}: calibration.json is written into the model folder: give a local folder")
    kind = kinds.detect(path)
    if kind in (None, "embedding"):
        p.error(f"--model {args.model} is a bi-encoder: calibration maps a reranker's scores")
    files = {"data": args.data, **({"test": args.test} if args.test else {})}
    examples = {name: read_examples(f, args.format, args.max_queries, args.columns, args.label_range)
                for name, f in files.items()}  # both files checked before the model loads
    from ..infer import Reranker

    ranker = Reranker(path, dtype=args.dtype, batch_size=args.batch_size, max_length=args.max_length)
    scored = {}
    for name, exs in examples.items():
        pairs = [(ex.query, d) for ex in exs for d in ex.docs]
        scores = ranker.compute_score(pairs, normalize=False)
        scores = [s[-1] if isinstance(s, list) else s for s in scores]  # layerwise: the last layer's
        scored[name] = (scores, [v for ex in exs for v in ex.labels])
    a, b = calibration.fit_platt(*scored["data"])
    rows, report = [], {"a": a, "b": b}
    print("| pairs of | pairs | ECE: sigmoid -> calibrated | Brier: sigmoid -> calibrated |\n|---|---|---|---|")
    for name, (scores, labels) in scored.items():
        plain, fitted = calibration.sigmoid(scores), calibration.apply(scores, a, b)
        row = {"pairs": len(scores), "ece_sigmoid": calibration.ece(plain, labels),
               "ece_calibrated": calibration.ece(fitted, labels), "brier_sigmoid": calibration.brier(plain, labels),
               "brier_calibrated": calibration.brier(fitted, labels)}
        report[name] = row
        print(f"| {files[name]} ({name}) | {row['pairs']} | {row['ece_sigmoid']:.4f} -> {row['ece_calibrated']:.4f} | "
              f"{row['brier_sigmoid']:.4f} -> {row['brier_calibrated']:.4f} |")
    if args.target_recall is not None:
        scores, labels = scored["data"]
        probability = calibration.threshold_for_recall(calibration.apply(scores, a, b), labels, args.target_recall)
        raw = calibration.threshold_for_recall(scores, labels, args.target_recall)
        report["threshold"] = {"recall": args.target_recall, "probability": probability, "score": raw}
        kept = sum(s >= raw for s in scores) / len(scores)
        print(f"recall {args.target_recall:g} of the relevant pairs of {args.data}: keep probability >= {probability:.4f} "
              f"(raw score >= {raw:.4f}); {100 * kept:.1f}% of its pairs pass")
        if "test" in scored:
            t_scores, t_labels = scored["test"]
            hit = [s >= raw for s, y in zip(t_scores, t_labels) if y > 0]
            report["threshold"]["test_recall"] = sum(hit) / max(len(hit), 1)
            print(f"  on {args.test}: recall {report['threshold']['test_recall']:.4f}, "
                  f"{100 * sum(s >= raw for s in t_scores) / len(t_scores):.1f}% of its pairs pass")
    saved = calibration.save(path, a, b, {"data": args.data, "pairs": len(scored["data"][0]),
                                          "max_queries": args.max_queries})
    print(f"p = sigmoid({a:.4f} * score + {b:+.4f}) written to {saved}")
    return report
