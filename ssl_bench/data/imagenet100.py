"""ImageNet-100: the 100-class subset of ImageNet-1k (ILSVRC-2012) used by CMC (Tian et al. 2020) and
solo-learn's ImageNet-100 benchmarks (about 126.7k training and 5,000 validation images).

    python -m ssl_bench.data.imagenet100 IMAGENET_ROOT DST          # DST/{train,val}/<wnid> -> IMAGENET_ROOT/...

links each of the 100 class folders of ``IMAGENET_ROOT/train`` and ``IMAGENET_ROOT/val`` (the usual
ImageFolder layout, validation images sorted into class folders) into ``DST`` as symlinks: no image is
copied. Then ``ssl-bench data=imagenet100 data.root=DST``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The class list (WordNet ids) of CMC's imagenet100.txt, https://github.com/HobbitLong/CMC/blob/master/imagenet100.txt
# (Tian, Krishnan, Isola, "Contrastive Multiview Coding", 2020); solo-learn's ImageNet-100 uses the same classes.
CLASSES: tuple[str, ...] = (
    "n02869837",
    "n01749939",
    "n02488291",
    "n02107142",
    "n13037406",
    "n02091831",
    "n04517823",
    "n04589890",
    "n03062245",
    "n01773797",
    "n01735189",
    "n07831146",
    "n07753275",
    "n03085013",
    "n04485082",
    "n02105505",
    "n01983481",
    "n02788148",
    "n03530642",
    "n04435653",
    "n02086910",
    "n02859443",
    "n13040303",
    "n03594734",
    "n02085620",
    "n02099849",
    "n01558993",
    "n04493381",
    "n02109047",
    "n04111531",
    "n02877765",
    "n04429376",
    "n02009229",
    "n01978455",
    "n02106550",
    "n01820546",
    "n01692333",
    "n07714571",
    "n02974003",
    "n02114855",
    "n03785016",
    "n03764736",
    "n03775546",
    "n02087046",
    "n07836838",
    "n04099969",
    "n04592741",
    "n03891251",
    "n02701002",
    "n03379051",
    "n02259212",
    "n07715103",
    "n03947888",
    "n04026417",
    "n02326432",
    "n03637318",
    "n01980166",
    "n02113799",
    "n02086240",
    "n03903868",
    "n02483362",
    "n04127249",
    "n02089973",
    "n03017168",
    "n02093428",
    "n02804414",
    "n02396427",
    "n04418357",
    "n02172182",
    "n01729322",
    "n02113978",
    "n03787032",
    "n02089867",
    "n02119022",
    "n03777754",
    "n04238763",
    "n02231487",
    "n03032252",
    "n02138441",
    "n02104029",
    "n03837869",
    "n03494278",
    "n04136333",
    "n03794056",
    "n03492542",
    "n02018207",
    "n04067472",
    "n03930630",
    "n03584829",
    "n02123045",
    "n04229816",
    "n02100583",
    "n03642806",
    "n04336792",
    "n03259280",
    "n02116738",
    "n02108089",
    "n03424325",
    "n01855672",
    "n02090622",
)


class SubsetError(ValueError):
    pass


def build_subset(
    src: str | Path, dst: str | Path, splits: tuple[str, ...] = ("train", "val"), classes: tuple[str, ...] = CLASSES
) -> dict[str, int]:
    """Link ``src/<split>/<wnid>`` to ``dst/<split>/<wnid>`` for every class; returns the image count per
    split. Existing links to the same folders are kept; anything else in the way is an error."""
    from ssl_bench.data.images import IMAGE_SUFFIXES

    src, dst = Path(src).expanduser().absolute(), Path(dst).expanduser().absolute()
    for split in splits:
        missing = [c for c in classes if not (src / split / c).is_dir()]
        if missing:
            raise SubsetError(
                f"{src / split} lacks {len(missing)} of the {len(classes)} classes (e.g. {missing[0]}); "
                f"expected the ImageNet layout {src}/{{{','.join(splits)}}}/<wnid>/*.JPEG"
            )
    counts = {}
    for split in splits:
        (dst / split).mkdir(parents=True, exist_ok=True)
        n = 0
        for c in classes:
            link, target = dst / split / c, src / split / c
            if link.is_symlink() and Path(os.readlink(link)) == target:
                pass
            elif link.exists() or link.is_symlink():
                raise SubsetError(f"{link} exists and is not a link to {target}; remove it or choose another DST")
            else:
                link.symlink_to(target, target_is_directory=True)
            n += sum(1 for f in target.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        counts[split] = n
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ssl_bench.data.imagenet100", description=__doc__.split("\n\n")[0])
    p.add_argument("imagenet_root", help="ImageNet folder with train/<wnid>/ and val/<wnid>/")
    p.add_argument("dst", help="where to create the ImageNet-100 folder (class folders as symlinks)")
    p.add_argument("--splits", default="train,val", help="comma-separated split folders (default: train,val)")
    args = p.parse_args(argv)
    try:
        counts = build_subset(args.imagenet_root, args.dst, tuple(s for s in args.splits.split(",") if s))
    except SubsetError as err:
        print(f"imagenet100: {err}", file=sys.stderr)
        return 2
    for split, n in counts.items():
        print(f"{Path(args.dst) / split}: {len(CLASSES)} classes, {n:,} images (linked)")
    print(f"use it with: ssl-bench data=imagenet100 data.root={args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
