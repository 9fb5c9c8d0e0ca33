"""A YOLO Pose tree as tools write it: which text files are labels, which image each one labels,
and which images its split lists name without a label (background images).

Roboflow writes `<split>/images/*.jpg` beside `<split>/labels/*.txt` plus README.roboflow.txt;
CVAT writes `images/<split>/`, `labels/<split>/` and one list file per split (`train.txt`,
`Validation.txt`) that data.yaml names; SLEAP writes `<split>/images` and `<split>/labels`.
Ultralytics' own rule decides: a label file lives in a `labels` folder, at the image's path with
`images` swapped for `labels`. Every other text file (split lists, READMEs) is not a label.
Paths here are relative to the tree (the folder of data.yaml), `/`-separated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from posixpath import splitext

from kpdeliver.images import IMAGE_EXTENSIONS

LABELS, IMAGES = "labels", "images"


@dataclass
class TreeLayout:
    labels: dict[
        str, str
    ]  # label file -> the image it labels (no extension when the tree holds no such image)
    background: dict[str, str] = field(
        default_factory=dict
    )  # a listed image's label key -> the image (no label file)
    lists: list[str] = field(default_factory=list)  # split list files named by data.yaml
    ignored: list[str] = field(default_factory=list)  # text files that are neither labels nor split lists

    def label_files(self, read: Callable[[str], bytes]) -> dict[str, bytes]:
        """The label files' bytes, and an empty label for each background image."""
        return {**{k: read(k) for k in self.labels}, **dict.fromkeys(self.background, b"")}

    def image_names(self) -> dict[str, str]:
        return {**self.labels, **self.background}


def _clean(ref: str) -> str:
    return "/".join(p for p in ref.strip().replace("\\", "/").split("/") if p not in ("", "."))


def _tail_in(path: str, present: set[str]) -> str | None:
    """The longest tail of `path` that is a path in `present`."""
    parts = _clean(path).split("/")
    return next(("/".join(parts[i:]) for i in range(len(parts)) if "/".join(parts[i:]) in present), None)


def _swap(path: str, old: str, new: str) -> str:
    """`path` with its last `old` folder named `new` (Ultralytics' images <-> labels rule)."""
    parts = path.split("/")
    folders = parts[:-1]
    if old in folders:
        i = len(folders) - 1 - folders[::-1].index(old)
        parts[i] = new
    return "/".join(parts)


def split_lists(doc: dict, files: Iterable[str]) -> list[str]:
    """The list files data.yaml names as splits (`train: train.txt`, `val: [a.txt, b.txt]`)."""
    present, out = set(files), []
    for value in doc.values():
        for ref in value if isinstance(value, list) else [value]:
            if isinstance(ref, str) and ref.lower().endswith(".txt"):
                hit = _tail_in(ref, present)
                if hit is not None and hit not in out:
                    out.append(hit)
    return out


def tree_layout(doc: dict, files: list[str], read: Callable[[str], bytes]) -> TreeLayout:
    """The layout of the tree whose data.yaml is `doc` and whose files are `files`; `read` gives a
    split list's bytes."""
    lists = split_lists(doc, files)
    texts = [f for f in files if f.lower().endswith(".txt") and f not in lists]
    label_set = {f for f in texts if LABELS in f.split("/")[:-1]}
    images = {splitext(f)[0]: f for f in files if splitext(f)[1].lower() in IMAGE_EXTENSIONS}
    labels = {}
    for lab in sorted(label_set):
        stem_path = _swap(splitext(lab)[0], LABELS, IMAGES)
        labels[lab] = images.get(stem_path, stem_path)
    background: dict[str, str] = {}
    image_files = set(images.values())
    for ref in _listed(lists, read):
        wanted = splitext(_swap(ref, IMAGES, LABELS))[0] + ".txt"
        listed = _tail_in(wanted, label_set)
        image = _tail_in(ref, image_files) or ref
        if listed is not None:
            labels[listed] = image
        else:
            background[wanted] = image
    return TreeLayout(labels, background, lists, sorted(set(texts) - label_set))


def _listed(lists: list[str], read: Callable[[str], bytes]) -> list[str]:
    out = []
    for name in lists:
        text = read(name).decode("utf-8", errors="replace")
        out += [
            _clean(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
        ]
    return out
