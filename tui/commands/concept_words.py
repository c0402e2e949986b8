"""`lorakit concept-words`: find a short, rare, single-token trigger word (or check one)."""

from __future__ import annotations

import argparse
from pathlib import Path

from prep.errors import DatasetNotFound
from tui.arguments import whole_number
from tui.output import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "concept-words", help="find a rare single-token trigger word for a LoRA",
        description="List short words the CLIP tokenizer reads as one token, rarest first, leaving out "
                    "words of the dataset's tags, common English words and common Danbooru tags. Use the "
                    "chosen word as the first tag of every caption (lorakit clean --trigger WORD "
                    "--remove-name 'full name') and train with keep_tokens = 1 and shuffled captions.")
    parser.add_argument("--dataset", type=Path, metavar="DATASET", help="leave out words of this dataset's tags")
    parser.add_argument("--max-length", type=whole_number(1), default=4, metavar="N",
                        help="longest word, in letters (default: 4)")
    parser.add_argument("--top", type=whole_number(1), default=30, metavar="N",
                        help="how many candidates to list (and score with --model) (default: 30)")
    parser.add_argument("--check", metavar="WORD", help="show how WORD tokenizes and whether it collides")
    parser.add_argument("--model", type=Path, metavar="PATH",
                        help="diffusers model folder: re-rank the top candidates by how little they move "
                             "its text encoder ('a photo of WORD' vs 'a photo of')")
    parser.add_argument("--caption-extension", default=".txt", metavar="EXT",
                        help="caption file extension (default: .txt)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from prep import concept_words as cw

    words: set[str] = set()
    if args.dataset is not None:
        if not args.dataset.is_dir():
            raise DatasetNotFound(f"{args.dataset}: not a folder; pass the dataset folder")
        words = cw.dataset_words(args.dataset, args.caption_extension)
    if args.check is not None:
        check = cw.check_word(args.check, words)
        if args.json:
            print_json(check.to_dict())
        else:
            ids = ", ".join(str(t) for t in check.tokens)
            kind = "a single token" if check.single else f"{len(check.tokens)} tokens"
            notes = [note for flag, note in ((check.in_dataset, "collides with a dataset tag"),
                                             (check.common_english, "a common English word"),
                                             (check.danbooru, "a common Danbooru tag or word")) if flag]
            print(f"{check.word}: {kind} [{ids}]" + ("; " + "; ".join(notes) if notes else "; no collision found"))
        return 0
    candidates = cw.find_candidates(max_length=args.max_length, exclude=words, top=args.top)
    if args.model is not None:
        candidates = cw.rank_by_model(args.model, candidates)
    if args.json:
        print_json({"candidates": [c.to_dict() for c in candidates]})
        return 0
    header = f"{'rank':>4}  {'word':<{max(4, args.max_length)}}  {'token id':>8}"
    print(header + ("  distance" if args.model is not None else ""))
    for rank, c in enumerate(candidates, 1):
        line = f"{rank:>4}  {c.word:<{max(4, args.max_length)}}  {c.token_id:>8}"
        print(line + (f"  {c.distance:8.3f}" if c.distance is not None else ""))
    return 0
