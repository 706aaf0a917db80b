#!/usr/bin/env python3
"""Build the bundled example datasets from Debian package descriptions.

The documents are real, human-written package descriptions from the Debian
*bookworm* ``main`` archive, and the labels are the real metadata that Debian
maintainers attached to those packages:

* ``debian-sections/`` (MULTI_CLASS): label = the package's archive ``Section``.
* ``debian-tags/`` (MULTI_LABEL): labels = the package's ``works-with::`` debtags.

Inputs are the two apt index files that this machine's package manager already
holds (stdlib only; the ``.lz4`` files are decompressed with
``/usr/lib/apt/apt-helper cat-file``, so ``apt`` must be installed):

* ``Packages``      - Package, Source, Section, Tag, Description-md5
* ``Translation-en`` - Package, Description-md5, Description-en (long text)

If ``Translation-en`` is missing, ``apt-get update -o Acquire::Languages=en``
fetches it.

Document text = short description + ". " + long description, with the " ."
paragraph separators dropped and all whitespace collapsed to single spaces (one
line per document). The package name is never part of the text. Documents shorter
than 40 characters are dropped, packages whose names end in -dbg, -dbgsym, -doc,
-dev, -common or -data are skipped (their descriptions are mostly copies of the
main package's text plus a boiler-plate sentence), and identical texts are
de-duplicated keeping the first package in name order.

Splits are deterministic: every package is placed by a SHA-256 hash of its
*source* package name, so binary packages built from the same source (which
often share most of their description) always land in the same split, and the
same inputs always give byte-identical outputs. The example datasets keep at most
3 packages per source package (``--full`` keeps all of them).

Output format is what Amazon Comprehend custom classification accepts: CSV with
no header, one document per line, ``LABEL,text`` (multi-label: ``L1|L2,text``
with labels sorted alphabetically), written with Python's csv module
(QUOTE_MINIMAL, "\\n" line terminator, UTF-8).

Usage::

    # rebuild data/debian-sections/ and data/debian-tags/ (next to this script)
    python data/build_debian_corpus.py

    # write them somewhere else
    python data/build_debian_corpus.py --out-dir /tmp/datasets

    # large multi-class benchmark corpus: every Section with >= 300 documents
    python data/build_debian_corpus.py --full /tmp/debian-full.csv [--min-docs 300]

    # print a Markdown table of per-file, per-label counts of the bundled files
    python data/build_debian_corpus.py --counts

Other options: ``--packages PATH`` and ``--translations PATH`` select other index
files; ``--keep-suffixed`` keeps the -dbg/-doc/-dev/-common/-data packages.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

APT_HELPER = "/usr/lib/apt/apt-helper"
APT_LISTS = Path("/var/lib/apt/lists")
PACKAGES_FILE = APT_LISTS / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"
TRANSLATION_FILE = APT_LISTS / "deb.debian.org_debian_dists_bookworm_main_i18n_Translation-en.lz4"

MIN_TEXT_CHARS = 40
SKIP_SUFFIXES = ("-dbg", "-dbgsym", "-doc", "-dev", "-common", "-data")
HASH_SALT = "flywheel-reconciler/debian/v1:"
MAX_PER_SOURCE = 3

# MULTI_CLASS example: Debian sections whose meaning is clear to a human reader and
# which are not given away by a package-name prefix (unlike python, perl, libs, ...).
SECTIONS = (
    "database",
    "editors",
    "games",
    "graphics",
    "mail",
    "math",
    "net",
    "science",
    "sound",
    "video",
)
# Target number of documents per file, in allocation order.
SECTION_SPLITS = (("test", 1000), ("train-v1", 600), ("train-v2", 1200), ("train-v3", 2400))
SECTION_FLOORS = {"test": 20, "train-v1": 30}

# MULTI_LABEL example: values of the debtags ``works-with::`` facet. Sub-values such
# as ``image:raster`` are folded into their parent value (``image``).
TAG_FACET = "works-with::"
TAG_VALUES = ("archive", "audio", "db", "image", "mail", "text", "video")
TAG_SPLITS = (("test", 500), ("train-v1", 400), ("train-v2", 800))


@dataclass(frozen=True)
class Document:
    """One package description with its metadata labels."""

    package: str
    source: str
    section: str
    tags: tuple[str, ...]
    text: str


def read_index(path: Path) -> Iterator[str]:
    """Yield the lines of an apt index file, decompressing it with apt-helper."""
    with subprocess.Popen(
        [APT_HELPER, "cat-file", str(path)],
        stdout=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            yield line.rstrip("\n")
    if proc.returncode != 0:
        raise RuntimeError(f"apt-helper cat-file {path} failed with status {proc.returncode}")


def parse_stanzas(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Parse deb822 stanzas; continuation lines are kept, joined with newlines."""
    stanza: dict[str, str] = {}
    key: str | None = None
    for line in lines:
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, None
        elif line[0] in " \t":
            if key is not None:
                stanza[key] += "\n" + line
        else:
            key, _, value = line.partition(":")
            stanza[key] = value.strip()
    if stanza:
        yield stanza


def description_text(description_en: str) -> str:
    """Turn a Description-en field into one line: short + ". " + long description."""
    short, *long_lines = description_en.split("\n")
    short = short.strip().rstrip(".").strip()
    body = " ".join(line.strip() for line in long_lines if line.strip() != ".")
    text = f"{short}. {body}" if body.strip() else short
    return re.sub(r"\s+", " ", text).strip()


def parse_tags(tag_field: str) -> tuple[str, ...]:
    """Split a (possibly multi-line) debtags field into sorted, unique tags."""
    return tuple(sorted({tag for tag in re.split(r"[,\s]+", tag_field) if tag}))


def load_documents(
    packages_path: Path, translations_path: Path, keep_suffixed: bool = False
) -> list[Document]:
    """Join Packages and Translation-en by (Package, Description-md5), filter and dedupe."""
    descriptions: dict[tuple[str, str], str] = {}
    for stanza in parse_stanzas(read_index(translations_path)):
        if "Description-en" in stanza:
            key = (stanza.get("Package", ""), stanza.get("Description-md5", ""))
            descriptions[key] = stanza["Description-en"]

    packages: dict[str, dict[str, str]] = {}
    for stanza in parse_stanzas(read_index(packages_path)):
        packages.setdefault(stanza.get("Package", ""), stanza)

    documents: list[Document] = []
    seen_texts: set[str] = set()
    for name in sorted(packages):
        stanza = packages[name]
        if not name or (not keep_suffixed and name.endswith(SKIP_SUFFIXES)):
            continue
        description = descriptions.get((name, stanza.get("Description-md5", "")))
        if description is None:
            continue
        text = description_text(description)
        if len(text) < MIN_TEXT_CHARS or text in seen_texts:
            continue
        seen_texts.add(text)
        source = stanza.get("Source", name).split(" ")[0] or name
        section = stanza.get("Section", "").rsplit("/", 1)[-1]
        documents.append(Document(name, source, section, parse_tags(stanza.get("Tag", "")), text))
    return documents


def stable_key(value: str) -> tuple[str, str]:
    """Deterministic pseudo-random order key for a string (a source package, a text)."""
    return (hashlib.sha256((HASH_SALT + value).encode("utf-8")).hexdigest(), value)


def group_by_source(
    documents: Sequence[Document], max_per_source: int = MAX_PER_SOURCE
) -> list[list[Document]]:
    """Group documents by source package, in hash order.

    At most ``max_per_source`` documents (chosen by hash of the package name) are
    kept per source, so big families of near-identical packages (e.g. the 161
    tesseract-ocr-* language packs) cannot dominate a label.
    """
    groups: dict[str, list[Document]] = defaultdict(list)
    for doc in documents:
        groups[doc.source].append(doc)
    result = []
    for source in sorted(groups, key=stable_key):
        members = sorted(groups[source], key=lambda d: stable_key(d.package))
        result.append(members[:max_per_source] if max_per_source > 0 else members)
    return result


def fill_splits(
    groups: Sequence[Sequence[Document]], quotas: Sequence[tuple[str, int]]
) -> dict[str, list[Document]]:
    """Fill splits in order with whole source groups until each split's quota is met."""
    result: dict[str, list[Document]] = {name: [] for name, _ in quotas}
    index = 0
    for group in groups:
        while index < len(quotas) and len(result[quotas[index][0]]) >= quotas[index][1]:
            index += 1
        if index == len(quotas):
            break
        result[quotas[index][0]].extend(group)
    return result


def water_level(sizes: Sequence[int], total: int) -> int:
    """Largest cap c such that sum(min(size, c)) <= total."""
    low, high = 0, max(sizes, default=0)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(s, mid) for s in sizes) <= total:
            low = mid
        else:
            high = mid - 1
    return low


def apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Split an integer total proportionally to weights (largest-remainder method)."""
    weight_sum = sum(weights)
    exact = [total * w / weight_sum for w in weights]
    parts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def build_sections(documents: Sequence[Document]) -> dict[str, list[tuple[list[str], str]]]:
    """MULTI_CLASS split, stratified by section.

    Large sections are capped (water-filling) so the example is not dominated by
    ``net`` and ``science``; each section's share is divided among the files in
    proportion to the file targets, with small floors for test and train-v1.
    """
    by_section: dict[str, list[Document]] = {s: [] for s in SECTIONS}
    for doc in documents:
        if doc.section in by_section:
            by_section[doc.section].append(doc)
    groups = {section: group_by_source(by_section[section]) for section in SECTIONS}
    available = {section: sum(len(g) for g in groups[section]) for section in SECTIONS}
    total = sum(size for _, size in SECTION_SPLITS)
    cap = water_level([available[s] for s in SECTIONS], total)
    names = [name for name, _ in SECTION_SPLITS]
    splits: dict[str, list[Document]] = {name: [] for name in names}
    for section in SECTIONS:
        parts = apportion(min(available[section], cap), [size for _, size in SECTION_SPLITS])
        for i, name in enumerate(names):
            shortfall = SECTION_FLOORS.get(name, 0) - parts[i]
            if shortfall > 0:
                parts[i] += shortfall
                parts[-1] -= shortfall
        filled = fill_splits(groups[section], list(zip(names, parts, strict=True)))
        for name in names:
            splits[name].extend(filled[name])
    splits = unify_sources(splits, names)
    return {name: [([d.section], d.text) for d in splits[name]] for name in names}


def unify_sources(
    splits: dict[str, list[Document]], names: Sequence[str]
) -> dict[str, list[Document]]:
    """Move every source package's documents into one split (the first in ``names``)."""
    first: dict[str, str] = {}
    for name in names:
        for doc in splits[name]:
            first.setdefault(doc.source, name)
    unified: dict[str, list[Document]] = {name: [] for name in names}
    for name in names:
        for doc in splits[name]:
            unified[first[doc.source]].append(doc)
    return unified


def tag_labels(doc: Document) -> list[str]:
    """The chosen ``works-with::`` values a document carries (sub-values folded)."""
    values = {tag[len(TAG_FACET) :].split(":")[0] for tag in doc.tags if tag.startswith(TAG_FACET)}
    return sorted(values.intersection(TAG_VALUES))


def build_tags(documents: Sequence[Document]) -> dict[str, list[tuple[list[str], str]]]:
    """MULTI_LABEL split over packages carrying at least one chosen works-with value."""
    eligible = [doc for doc in documents if tag_labels(doc)]
    splits = fill_splits(group_by_source(eligible), TAG_SPLITS)
    return {name: [(tag_labels(d), d.text) for d in docs] for name, docs in splits.items()}


def write_csv(path: Path, rows: Iterable[tuple[Sequence[str], str]]) -> int:
    """Write Comprehend-style CSV rows in a stable shuffled order; return the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        for labels, text in sorted(rows, key=lambda row: (stable_key(row[1]), row[0])):
            writer.writerow(["|".join(sorted(labels)), text])
            count += 1
    return count


def write_full(documents: Sequence[Document], out: Path, min_docs: int) -> tuple[int, int]:
    """Write every document of every section with >= min_docs documents."""
    counts = Counter(doc.section for doc in documents)
    keep = {section for section, n in counts.items() if n >= min_docs and section}
    rows = [([doc.section], doc.text) for doc in documents if doc.section in keep]
    return write_csv(out, rows), len(keep)


def read_counts(path: Path) -> Counter[str]:
    """Per-label document counts of a Comprehend CSV file."""
    counts: Counter[str] = Counter()
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle):
            counts.update(row[0].split("|"))
            counts["(documents)"] += 1
    return counts


def counts_table(directory: Path) -> str:
    """Markdown table of per-label counts for every CSV file in ``directory``."""
    files = sorted(directory.glob("*.csv"), key=lambda p: (p.stem == "test", p.stem))
    per_file = {p.stem: read_counts(p) for p in files}
    labels = sorted({label for c in per_file.values() for label in c if label != "(documents)"})
    header = "| label | " + " | ".join(f"{stem}.csv" for stem in per_file) + " |"
    lines = [header, "|" + "---|" * (len(per_file) + 1)]
    for label in [*labels, "(documents)"]:
        cells = " | ".join(str(c[label]) for c in per_file.values())
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=Path, default=PACKAGES_FILE)
    parser.add_argument("--translations", type=Path, default=TRANSLATION_FILE)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--full", type=Path, metavar="OUT.csv", help="write the large corpus")
    parser.add_argument("--min-docs", type=int, default=300, help="section size for --full")
    parser.add_argument("--keep-suffixed", action="store_true", help="keep -dev/-doc/... packages")
    parser.add_argument("--counts", action="store_true", help="print per-label count tables")
    args = parser.parse_args(argv)

    if args.counts:
        for sub in ("debian-sections", "debian-tags"):
            print(f"### {sub}\n\n{counts_table(args.out_dir / sub)}\n")
        return 0

    documents = load_documents(args.packages, args.translations, args.keep_suffixed)
    print(f"{len(documents)} documents after filtering and de-duplication", file=sys.stderr)
    if args.full is not None:
        n_docs, n_labels = write_full(documents, args.full, args.min_docs)
        print(f"wrote {args.full}: {n_docs} documents, {n_labels} labels", file=sys.stderr)
        return 0

    for sub, splits in (
        ("debian-sections", build_sections(documents)),
        ("debian-tags", build_tags(documents)),
    ):
        for name, rows in splits.items():
            n = write_csv(args.out_dir / sub / f"{name}.csv", rows)
            print(f"wrote {sub}/{name}.csv: {n} documents", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
