"""Mutation fuzzing of the extract reader (issue 17): damaged copies of a synthetic extract, read end to end.

Run with ``python benchmarks/fuzz_io.py [--n 3000] [--seed 17] [--courses 25]``. A small synthetic extract is
written once (``kvarus_research.synthetic.write_extract``); each iteration copies one of its DataDump files with
one to three mutations of the kinds a damaged real-world extract shows (a stray or missing quote, a cut file, a
lost or doubled line, an extra or missing ``;``, CR-only or mixed line ends, a doubled BOM, Windows-1252 bytes, a
NUL byte, random byte flips, dates with years past 2262, 20-digit numbers, thousands separators ...) and reads the
folder with :func:`kvarus_research.read_extract`. It counts:

- *unhandled*: any exception other than the library's own :class:`~kvarus_research.errors.KvarusError` (a
  traceback a user would see);
- *accounting breaks*: a report whose rows or physical lines do not add up, checked here independently of the
  library (the file's lines counted from its bytes; read = accepted + rejected; accepted rows = registrations),
  or an ``ExtractError`` saying the library's own accounting check failed;
- *refused*: a ``KvarusError`` (the file cannot be read: the message names the problem), and *read*.

Exit code 0 when there is no unhandled exception and no accounting break, else 1.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import kvarus_research as kr
from kvarus_research.errors import KvarusError

Mutation = Callable[[bytes, random.Random], bytes]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


def _join(lines: list[bytes]) -> bytes:
    return b"\r\n".join(lines)


def _pick_data_line(lines: list[bytes], rng: random.Random) -> int:
    if len(lines) < 3:
        return rng.randrange(len(lines))
    return rng.randrange(1, len(lines) - 1)  # not the header, not the empty text after the last line break


def _replace_field(data: bytes, rng: random.Random, value: bytes) -> bytes:
    lines = _lines(data)
    i = _pick_data_line(lines, rng)
    fields = lines[i].split(b";")
    j = rng.randrange(len(fields))
    fields[j] = value
    lines[i] = b";".join(fields)
    return _join(lines)


def stray_quote(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    i = _pick_data_line(lines, rng)
    fields = lines[i].split(b";")
    j = rng.randrange(len(fields))
    fields[j] = b'"' + fields[j]
    lines[i] = b";".join(fields)
    return _join(lines)


def quoted_newline(data: bytes, rng: random.Random) -> bytes:
    return _replace_field(data, rng, b'"two\r\nlines"')


def cut(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def cut_after_separator(data: bytes, rng: random.Random) -> bytes:
    body = data.rstrip(b"\r\n")
    positions = [k for k in range(len(body)) if body[k : k + 1] == b";"]
    return body[: rng.choice(positions) + 1] if positions else body


def drop_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    if len(lines) > 1:
        del lines[rng.randrange(len(lines))]
    return _join(lines)


def double_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return _join(lines)


def blank_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    lines.insert(rng.randrange(1, len(lines) + 1), rng.choice([b"", b"  ", b";;;"]))
    return _join(lines)


def extra_separator(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    i = _pick_data_line(lines, rng)
    k = rng.randrange(len(lines[i]) + 1)
    lines[i] = lines[i][:k] + b";" + lines[i][k:]
    return _join(lines)


def lost_separator(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    i = _pick_data_line(lines, rng)
    lines[i] = lines[i].replace(b";", b"", 1)
    return _join(lines)


def cr_only(data: bytes, rng: random.Random) -> bytes:
    return data.replace(b"\r\n", b"\r")


def lf_only(data: bytes, rng: random.Random) -> bytes:
    return data.replace(b"\r\n", b"\n")


def lone_cr(data: bytes, rng: random.Random) -> bytes:
    k = rng.randrange(len(data) + 1)
    return data[:k] + b"\r" + data[k:]


def double_bom(data: bytes, rng: random.Random) -> bytes:
    return b"\xef\xbb\xbf" + data


def no_bom(data: bytes, rng: random.Random) -> bytes:
    return data.removeprefix(b"\xef\xbb\xbf")


def cp1252(data: bytes, rng: random.Random) -> bytes:
    return _replace_field(data, rng, "Førde".encode("cp1252"))


def nul(data: bytes, rng: random.Random) -> bytes:
    k = rng.randrange(len(data) + 1)
    return data[:k] + b"\x00" + data[k:]


def flip(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def far_date(data: bytes, rng: random.Random) -> bytes:
    year = rng.choice([2262, 2610, 9999, 1799, 2201, 1000])
    return _replace_field(data, rng, f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{year}".encode())


def odd_number(data: bytes, rng: random.Random) -> bytes:
    value = rng.choice(["12345678901234567890", "1.000", "12.500", "9007199254740993", "-0", "1e400", "NaN"])
    return _replace_field(data, rng, value.encode())


def drop_header(data: bytes, rng: random.Random) -> bytes:
    return b"\xef\xbb\xbf" + data.removeprefix(b"\xef\xbb\xbf").split(b"\r\n", 1)[-1]


def header_only(data: bytes, rng: random.Random) -> bytes:
    return data.split(b"\r\n", 1)[0] + b"\r\n"


MUTATIONS: list[Mutation] = [
    stray_quote,
    quoted_newline,
    cut,
    cut_after_separator,
    drop_line,
    double_line,
    blank_line,
    extra_separator,
    lost_separator,
    cr_only,
    lf_only,
    lone_cr,
    double_bom,
    no_bom,
    cp1252,
    nul,
    flip,
    far_date,
    odd_number,
    drop_header,
    header_only,
]


def accounting_breaks(reg: kr.Registry, folder: Path) -> list[str]:
    """What does not add up in a registry's report, checked from the files' bytes."""
    out = []
    rows = reg.validation.rows
    lines = reg.validation.lines.set_index("file")
    if not (rows["read"] == rows["accepted"] + rows["rejected"]).all():
        out.append("read != accepted + rejected")
    n_regs = len(reg.registrations) + (0 if reg.network_work is None else len(reg.network_work))
    if rows["accepted"].sum() != n_regs:
        out.append("accepted rows != registrations")
    for r in rows.itertuples():
        if r.file not in lines.index:
            out.append(f"{r.file}: no line accounting")
            continue
        n = lines.loc[r.file]
        if n["rows"] != r.read or n["lines"] != n["header"] + n["blank"] + n["continued"] + n["rows"]:
            out.append(f"{r.file}: lines do not add up")
        path = folder / r.file
        if path.suffix == ".csv" and path.is_file():
            data = path.read_bytes()
            if n["lines"] != data.count(b"\n") + (0 if data.endswith(b"\n") else 1):
                out.append(f"{r.file}: {n['lines']} lines reported, the file has others")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="mutated extracts to read")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--courses", type=int, default=25, help="courses in the synthetic extract")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="kvarus-fuzz-"))
    try:
        base = kr.synthetic.write_extract(
            kr.synthetic.generate(n_courses=args.courses, seed=args.seed), work / "x"
        )
        (base / "rapport.xlsx").unlink()  # the bundled codebook is the same; reading the workbook is slow
        dumps = sorted(base.glob("DataDump_*.csv"))
        originals = {p: p.read_bytes() for p in dumps}
        counts: Counter[str] = Counter()
        by_kind: Counter[str] = Counter()
        refusals: Counter[str] = Counter()
        failures: list[str] = []
        t0 = time.perf_counter()
        for it in range(args.n):
            target = rng.choice(dumps)
            data = originals[target]
            kinds = [rng.choice(MUTATIONS) for _ in range(rng.randint(1, 3))]
            for m in kinds:
                if data:
                    data = m(data, rng)
            target.write_bytes(data)
            try:
                reg = kr.read_extract(base, allow_cp1252=rng.random() < 0.5)
            except KvarusError as exc:
                if "accounting broken" in str(exc):
                    counts["accounting_break"] += 1
                    failures.append(f"#{it} {[k.__name__ for k in kinds]}: {exc}")
                else:
                    counts["refused"] += 1
                    refusals[getattr(exc, "rule", type(exc).__name__)] += 1
            except Exception:  # noqa: BLE001 - counting what escapes is the point
                counts["unhandled"] += 1
                failures.append(f"#{it} {[k.__name__ for k in kinds]}:\n{traceback.format_exc(limit=6)}")
            else:
                broken = accounting_breaks(reg, base)
                if broken:
                    counts["accounting_break"] += 1
                    failures.append(f"#{it} {[k.__name__ for k in kinds]}: {broken}")
                else:
                    counts["read"] += 1
            for k in kinds:
                by_kind[k.__name__] += 1
            target.write_bytes(originals[target])
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.n} mutated extracts in {seconds:.0f} s: read {counts['read']}, refused {counts['refused']}, "
        f"unhandled exceptions {counts['unhandled']}, accounting breaks {counts['accounting_break']}"
    )
    print("refused by rule: " + ", ".join(f"{k} {v}" for k, v in refusals.most_common()))
    print("mutations applied: " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
    for f in failures[:10]:
        print(f)
    return 0 if not counts["unhandled"] and not counts["accounting_break"] else 1


if __name__ == "__main__":
    sys.exit(main())
