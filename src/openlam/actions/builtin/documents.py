"""documents: write deliverables into the run's workspace as Markdown, CSV, HTML and PDF.

Every file lands inside the workspace and is written atomically; paths go through
:func:`openlam.actions.workspace.resolve` (no writes to openlam.toml, policies/, agents/
or .openlam/). PDFs are laid out by fpdf2 from Markdown; text outside Latin-1 is drawn with a
Unicode TrueType font (DejaVu Sans when installed, or the font named in ``[documents]``);
with no such font, characters the built-in PDF fonts lack are transliterated or replaced,
and the result says how many.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from typing_extensions import TypedDict

from openlam.actions.plugin_config import PluginConfig, settings_of
from openlam.actions.spec import ActionContext, Risk, action
from openlam.actions.workspace import relative, resolve, write_file
from openlam.config import Settings

if TYPE_CHECKING:  # fpdf and markdown-it load only when a document is written (start-up, memory)
    from fpdf import FPDF
    from markdown_it import MarkdownIt
from openlam.errors import ActionError

log = logging.getLogger(__name__)

MAX_CONTENT_CHARS = 5_000_000
FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
    "/Library/Fonts",
)
DEJAVU = {
    "": "DejaVuSans.ttf",
    "B": "DejaVuSans-Bold.ttf",
    "I": "DejaVuSans-Oblique.ttf",
    "BI": "DejaVuSans-BoldOblique.ttf",
}
DEJAVU_MONO = "DejaVuSansMono.ttf"


class Written(TypedDict):
    path: str
    bytes: int
    sha256: str


class CsvWritten(Written):
    rows: int
    columns: list[str]


class PdfWritten(Written):
    pages: int
    font: str
    layout: str
    replaced_characters: int
    missing_glyphs: list[str]
    skipped_images: list[str]


# --- writing files ---------------------------------------------------------------------


def _target(ctx: ActionContext, path: str, suffixes: tuple[str, ...]) -> Path:
    """The checked path to write; a name without an extension gets the format's own."""
    if not path.strip():
        raise ActionError(
            f"give the file's path relative to the workspace, e.g. report{suffixes[0]}"
        )
    named = path.strip()
    if (
        not named.endswith(("/", "\\"))
        and Path(named).name not in ("", ".", "..")
        and not Path(named).suffix
    ):
        named += suffixes[0]
    return resolve(ctx, named, for_write=True)


def _write(ctx: ActionContext, target: Path, data: bytes) -> Written:
    size, digest = write_file(target, [data])
    return {"path": relative(ctx, target), "bytes": size, "sha256": digest}


def _check_size(content: str) -> None:
    if len(content) > MAX_CONTENT_CHARS:
        raise ActionError(
            f"the content is {len(content)} characters; documents take at most "
            f"{MAX_CONTENT_CHARS} — split it into several files"
        )


def _written_file(output: Any, ctx: ActionContext) -> tuple[Path | None, bytes, str | None]:
    """The file an action reported writing, or what is wrong with it."""
    try:
        target = resolve(ctx, output["path"], for_write=False)
    except (ActionError, KeyError, TypeError):
        return None, b"", "the action reported no file path inside the workspace"
    if not target.is_file():
        return None, b"", f"{output['path']} does not exist after writing"
    data = target.read_bytes()
    if len(data) != output.get("bytes") or hashlib.sha256(data).hexdigest() != output.get("sha256"):
        return None, data, f"{output['path']} does not hold what was written"
    return target, data, None


# --- Markdown --------------------------------------------------------------------------


def _verify_markdown(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    _, data, problem = _written_file(output, ctx)
    if problem:
        return problem
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return f"{output['path']} is not valid UTF-8"
    return None


@action("documents.write_markdown", risk=Risk.write, idempotent=True, verify=_verify_markdown)
def write_markdown(
    ctx: ActionContext, path: str, content: str, title: str | None = None
) -> Written:
    """Write a Markdown document into the workspace (created or replaced).

    Args:
        path: File path relative to the workspace, e.g. reports/brief.md.
        content: The Markdown text.
        title: A title, added as a top-level heading unless the text starts with one.
    """
    _check_size(content)
    text = content
    if title and not content.lstrip().startswith("# "):
        text = f"# {title.strip()}\n\n{content}"
    if not text.endswith("\n"):
        text += "\n"
    return _write(ctx, _target(ctx, path, (".md",)), text.encode("utf-8"))


# --- CSV -------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any, escape_formulas: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    if escape_formulas and isinstance(value, str) and text.startswith(_FORMULA_START):
        try:
            float(text)  # a negative number is data, not a formula
        except ValueError:
            return "'" + text
    return text


def _table(
    rows: list[dict[str, Any]] | list[list[Any]], columns: list[str] | None
) -> tuple[list[str], list[list[Any]]]:
    if all(isinstance(r, dict) for r in rows):
        dict_rows: list[dict[str, Any]] = [r for r in rows if isinstance(r, dict)]
        if columns is None:
            columns = list(dict.fromkeys(k for r in dict_rows for k in r))
        known = set(columns)
        for n, r in enumerate(dict_rows, 1):
            extra = [k for k in r if k not in known]
            if extra:
                raise ActionError(
                    f"row {n} has the field(s) {', '.join(map(repr, extra))} "
                    "that are not in columns; add them to columns or drop them"
                )
        return columns, [[r.get(c) for c in columns] for r in dict_rows]
    list_rows: list[list[Any]] = [r for r in rows if isinstance(r, list)]
    if len(list_rows) != len(rows):
        raise ActionError(
            "rows mixes objects and lists; give all rows as objects (dicts) "
            "or all as lists of cells"
        )
    if columns is not None:
        for n, r in enumerate(list_rows, 1):
            if len(r) != len(columns):
                raise ActionError(
                    f"row {n} has {len(r)} cells but there are {len(columns)} "
                    "columns; give every row one cell per column"
                )
    return columns or [], list_rows


def _verify_csv(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    _, data, problem = _written_file(output, ctx)
    if problem:
        return problem
    try:
        records = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        return f"{output['path']} is not readable CSV: {exc}"
    expected = output["rows"] + (1 if output["columns"] else 0)
    if len(records) != expected:
        return f"{output['path']} has {len(records)} records, expected {expected}"
    return None


@action("documents.write_csv", risk=Risk.write, idempotent=True, verify=_verify_csv)
def write_csv(
    ctx: ActionContext,
    path: str,
    rows: list[dict[str, Any]] | list[list[Any]],
    columns: list[str] | None = None,
    escape_formulas: bool = True,
    excel: bool = False,
) -> CsvWritten:
    """Write a table as a CSV file into the workspace (created or replaced).

    Args:
        path: File path relative to the workspace, e.g. leads.csv.
        rows: The rows: objects (field -> value; the header is their fields in order of
            appearance) or lists of cells.
        columns: The header and column order; required to give lists of cells a header.
        escape_formulas: Prefix text cells that a spreadsheet would run as a formula
            (starting with =, +, -, @) with an apostrophe.
        excel: Start the file with a UTF-8 byte order mark so Excel reads accents right.
    """
    header, table = _table(rows, columns)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(header)
    for r in table:
        writer.writerow([_cell(v, escape_formulas) for v in r])
    data = buffer.getvalue().encode("utf-8-sig" if excel else "utf-8")
    written = _write(ctx, _target(ctx, path, (".csv",)), data)
    return {**written, "rows": len(table), "columns": header}


# --- HTML ------------------------------------------------------------------------------


def _markdown() -> MarkdownIt:
    # Raw HTML inside Markdown is shown as text: content may come from untrusted pages.
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:46rem;"
    "margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}"
    "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3rem .6rem}"
    "pre{background:#f5f5f5;padding:.8rem;overflow:auto}"
)


def _html_document(body: str, title: str | None) -> str:
    head_title = html.escape(title or "Document")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{head_title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


class _TagCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)


def _verify_html(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    _, data, problem = _written_file(output, ctx)
    if problem:
        return problem
    try:
        checker = _TagCheck()
        checker.feed(data.decode("utf-8"))
        checker.close()
    except UnicodeDecodeError:
        return f"{output['path']} is not valid UTF-8"
    return None if "html" in checker.tags else f"{output['path']} has no <html> element"


@action("documents.write_html", risk=Risk.write, idempotent=True, verify=_verify_html)
def write_html(
    ctx: ActionContext, path: str, content: str, title: str | None = None, markdown: bool = False
) -> Written:
    """Write an HTML page into the workspace (created or replaced).

    A fragment is wrapped in a complete, styled HTML5 page; a whole document (starting
    with <!DOCTYPE html> or <html>) is written as given.

    Args:
        path: File path relative to the workspace, e.g. report.html.
        content: HTML (a fragment or a whole document), or Markdown when markdown is true.
        title: The page title (and a top heading for Markdown without one).
        markdown: Treat content as Markdown and render it to HTML.
    """
    _check_size(content)
    if markdown:
        source = content
        if title and not content.lstrip().startswith("# "):
            source = f"# {title.strip()}\n\n{content}"
        page = _html_document(_markdown().render(source), title)
    elif re.match(r"\s*(<!doctype\s+html|<html[\s>])", content, re.IGNORECASE):
        page = content
    else:
        page = _html_document(content, title)
    return _write(ctx, _target(ctx, path, (".html", ".htm")), page.encode("utf-8"))


# --- PDF -------------------------------------------------------------------------------


class DocumentsConfig(PluginConfig):
    """The ``[documents]`` table of openlam.toml: font files for PDFs (.ttf or .otf,
    relative to the workspace); the bold and italic styles default to the regular file."""

    section: ClassVar[str] = "documents"
    hint: ClassVar[str] = "each font is a path to a .ttf or .otf file"

    pdf_font: str = ""
    pdf_font_bold: str = ""
    pdf_font_italic: str = ""
    pdf_font_bold_italic: str = ""
    pdf_font_mono: str = ""
    pdf_fallback_fonts: list[str] = []


CONFIG = DocumentsConfig


@dataclass(frozen=True)
class _Fonts:
    family: str  # what the result reports
    styles: dict[str, Path]  # "", "B", "I", "BI" -> file; empty: the core Helvetica
    mono: Path | None
    fallbacks: tuple[Path, ...]

    @property
    def unicode(self) -> bool:
        return bool(self.styles)


def _fonts(settings: Settings) -> _Fonts:
    """Configured fonts first, then DejaVu where the system has it, else the core fonts."""
    conf = DocumentsConfig.of(settings)
    fallbacks = tuple(
        _font_file(p, "pdf_fallback_fonts", settings) for p in conf.pdf_fallback_fonts
    )
    if conf.pdf_font:
        regular = _font_file(conf.pdf_font, "pdf_font", settings)
        styles = {"": regular}
        for style, key in (
            ("B", "pdf_font_bold"),
            ("I", "pdf_font_italic"),
            ("BI", "pdf_font_bold_italic"),
        ):
            value = getattr(conf, key)
            styles[style] = _font_file(value, key, settings) if value else regular
        mono = (
            _font_file(conf.pdf_font_mono, "pdf_font_mono", settings)
            if conf.pdf_font_mono
            else None
        )
        return _Fonts(regular.stem, styles, mono, fallbacks)
    for directory in _font_dirs():
        regular = directory / DEJAVU[""]
        if regular.is_file():
            styles = {
                s: (directory / f if (directory / f).is_file() else regular)
                for s, f in DEJAVU.items()
            }
            mono = directory / DEJAVU_MONO
            return _Fonts("DejaVuSans", styles, mono if mono.is_file() else None, fallbacks)
    return _Fonts("Helvetica", {}, None, fallbacks)


def _font_dirs() -> list[Path]:
    dirs = [Path(d) for d in FONT_DIRS]
    dirs.append(Path.home() / ".fonts")
    try:  # matplotlib ships DejaVu; use it where it is installed, without importing it
        from importlib.util import find_spec

        spec = find_spec("matplotlib")
        if spec and spec.origin:
            dirs.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf")
    except (ImportError, ValueError):
        pass
    return dirs


def _font_file(value: str, key: str, settings: Settings) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = settings.workspace / path
    if not path.is_file() or path.suffix.lower() not in (".ttf", ".otf"):
        raise ActionError(
            f"[documents] {key} = {value!r}: no TrueType/OpenType font file there; "
            "point it to an existing .ttf or .otf file or remove the setting"
        )
    return path


# Typographic characters the core PDF fonts lack, and their closest Latin-1 forms.
_LATIN1_FORMS = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": ",",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2039": "<",
        "\u203a": ">",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2010": "-",
        "\u2011": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u2022": "\u00b7",
        "\u2023": ">",
        "\u2192": "->",
        "\u2190": "<-",
        "\u21d2": "=>",
        "\u2264": "<=",
        "\u2265": ">=",
        "\u2260": "!=",
        "\u20ac": "EUR",
        "\u2122": "(TM)",
        "\u00a0": " ",
        "\u2009": " ",
        "\u200b": "",
        "\u2002": " ",
        "\u2003": " ",
    }
)


def _to_latin1(text: str) -> tuple[str, int]:
    """Text the core fonts can draw, and how many characters had to change."""
    out: list[str] = []
    changed = 0
    for ch in text:
        if ord(ch) < 256:
            out.append(ch)
            continue
        changed += 1
        mapped = ch.translate(_LATIN1_FORMS)
        if mapped != ch:
            out.append(mapped)
            continue
        base = "".join(
            c
            for c in unicodedata.normalize("NFKD", ch)
            if not unicodedata.combining(c) and ord(c) < 256
        )
        out.append(base or "?")
    return "".join(out), changed


_IMG = re.compile(r'<img src="([^"]*)" alt="([^"]*)"(?: title="[^"]*")? />')


def _local_images(body: str, ctx: ActionContext) -> tuple[str, list[str]]:
    """Keep images that are files in the workspace; others become their alt text.

    Nothing is fetched from the network while laying out a PDF.
    """
    skipped: list[str] = []

    def swap(match: re.Match[str]) -> str:
        src, alt = html.unescape(match.group(1)), match.group(2)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", src, re.IGNORECASE):
            try:
                file = resolve(ctx, src, for_write=False)
            except ActionError:
                file = None
            if (
                file is not None
                and file.is_file()
                and file.suffix.lower()
                in (".png", ".jpg", ".jpeg", ".gif", ".svg", ".bmp", ".tif", ".tiff", ".webp")
            ):
                return f'<img src="{html.escape(str(file))}" alt="{alt}" />'
        skipped.append(src)
        return f"<em>[image: {alt or html.escape(src)}]</em>"

    return _IMG.sub(swap, body), skipped


def _new_pdf(fonts: _Fonts, title: str | None, author: str | None) -> FPDF:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=18)
    pdf.set_creator("OpenLAM")
    if title:
        pdf.set_title(title)
    if author:
        pdf.set_author(author)
    if fonts.unicode:
        for style, file in fonts.styles.items():
            pdf.add_font("body", style, str(file))
        if fonts.mono is not None:
            pdf.add_font("mono", "", str(fonts.mono))
        names = []
        for n, file in enumerate(fonts.fallbacks):
            pdf.add_font(f"fallback{n}", "", str(file))
            names.append(f"fallback{n}")
        if names:
            pdf.set_fallback_fonts(names)
    pdf.add_page()
    pdf.set_font("body" if fonts.unicode else "helvetica", size=11)
    return pdf


def _layout_html(pdf: FPDF, body: str, fonts: _Fonts) -> None:
    from fpdf.fonts import FontFace, TextStyle

    family = "body" if fonts.unicode else "helvetica"
    mono = "mono" if fonts.mono is not None else ("body" if fonts.unicode else "courier")
    ink = "#1f2328"
    pdf.write_html(
        body,
        font_family=family,
        warn_on_tags_not_matching=False,
        li_prefix_color=(90, 90, 90),
        table_line_separators=True,
        tag_styles={
            "h1": TextStyle(color=ink, font_style="B", font_size_pt=20, t_margin=4, b_margin=2),
            "h2": TextStyle(color=ink, font_style="B", font_size_pt=15, t_margin=5, b_margin=1),
            "h3": TextStyle(color=ink, font_style="B", font_size_pt=12.5, t_margin=4, b_margin=1),
            "h4": TextStyle(color=ink, font_style="B", font_size_pt=11, t_margin=3, b_margin=1),
            "blockquote": TextStyle(color="#57606a", l_margin=6, t_margin=2, b_margin=2),
            "code": FontFace(family=mono),
            "pre": TextStyle(font_family=mono, font_size_pt=9, t_margin=3, b_margin=3),
        },
    )


def _layout_plain(pdf: FPDF, text: str, title: str | None) -> None:
    if title:
        pdf.set_font(size=18)
        pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    pdf.set_font(size=11)
    pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")


def _verify_pdf(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    _, data, problem = _written_file(output, ctx)
    if problem:
        return problem
    if not data.startswith(b"%PDF-"):
        return f"{output['path']} does not start with a PDF header"
    if b"%%EOF" not in data[-1024:]:
        return f"{output['path']} has no PDF end-of-file marker (truncated?)"
    pages = len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", data))
    if pages != output.get("pages"):
        return f"{output['path']} has {pages} pages, expected {output.get('pages')}"
    return None


@action("documents.write_pdf", risk=Risk.write, idempotent=True, verify=_verify_pdf)
def write_pdf(
    ctx: ActionContext,
    path: str,
    content: str,
    title: str | None = None,
    author: str | None = None,
    markdown: bool = True,
) -> PdfWritten:
    """Write a PDF document into the workspace (created or replaced), laid out from Markdown:
    headings, paragraphs, emphasis, lists, links, tables, code and quotes.

    Args:
        path: File path relative to the workspace, e.g. brief.pdf.
        content: The text, as Markdown (or plain text when markdown is false).
        title: The document title: a heading on the first page and the PDF's metadata.
        author: The author in the PDF's metadata.
        markdown: Lay out content as Markdown; false prints it as plain paragraphs.
    """
    _check_size(content)
    target = _target(ctx, path, (".pdf",))
    fonts = _fonts(settings_of(ctx))
    replaced = 0
    if markdown:
        source = content
        if title and not content.lstrip().startswith("# "):
            source = f"# {title.strip()}\n\n{content}"
        body = _markdown().render(source)
    else:
        heading = f"<h1>{html.escape(title)}</h1>\n" if title else ""
        body = heading + "".join(
            f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n"
            for p in re.split(r"\n\s*\n", content)
            if p.strip()
        )
    body, skipped = _local_images(body, ctx)
    plain_text = content
    if not fonts.unicode:
        body, replaced = _to_latin1(body)
        plain_text, _ = _to_latin1(content)
        title = _to_latin1(title)[0] if title else title
        author = _to_latin1(author)[0] if author else author
    layout = "markdown" if markdown else "text"
    pdf = _new_pdf(fonts, title, author)
    try:
        _layout_html(pdf, body, fonts)
    except Exception as exc:  # fpdf2 cannot lay out some structures; keep the words anyway
        log.warning("PDF layout of %s failed (%s); writing it as plain text", path, exc)
        pdf = _new_pdf(fonts, title, author)
        _layout_plain(pdf, plain_text, title)
        layout = "plain"
    try:
        data = bytes(pdf.output())
    except Exception as exc:
        raise ActionError(f"could not produce the PDF {path}: {exc}") from None
    missing: list[str] = []
    for font in pdf.fonts.values():
        for code in getattr(font, "missing_glyphs", []):
            if chr(code) not in missing:
                missing.append(chr(code))
    written = _write(ctx, target, data)
    return {
        **written,
        "pages": pdf.pages_count,
        "font": fonts.family,
        "layout": layout,
        "replaced_characters": replaced,
        "missing_glyphs": missing[:100],
        "skipped_images": skipped,
    }
