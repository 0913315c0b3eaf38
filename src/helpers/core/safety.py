"""Keeping customer text inert and personal data out of outputs: masking, escaping, neutralising."""

from __future__ import annotations

import re

# Free-text masking (reviews, tickets): generous, since over-masking an excerpt costs nothing.
_MASKS = [(re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "[e-mail]"),
          (re.compile(r"\+?\d[\d ()/-]{7,}\d"), "[phone]"),
          (re.compile(r"\b\d{1,3}(\.\d{1,3}){3}\b"), "[ip]")]

# Report scanning: precise, since dates, amounts and ids fill every report and must not raise false alarms.
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w.+/-])(?:\+\d{2,3}[ -]?\d{2,4}[ -]?\d{3,}|00\d{2,3}-?\d{2,4}-?\d{4,}"
                   r"|\(0\d{2,4}\) ?\d{3,4} ?\d{2,4}|0\d{2,4} \d{5,})(?!\w|\.\d)")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d)")  # a full stop may follow
# Embedded images and widget buffers are base64; a phone-like run of digits can occur in them by chance.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{120,}={0,2}")


def mask_pii(text: str) -> str:
    """Replace e-mail addresses, phone numbers and IP addresses in free text.

    >>> mask_pii("mail me at anna.m@web.de or +49 151 2345678, ip 10.0.0.1")
    'mail me at [e-mail] or [phone], ip [ip]'
    """
    if not isinstance(text, str):
        return text
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return text



# ---------------------------------------------------------------------------
# Inert output: HTML, Markdown, spreadsheets
# ---------------------------------------------------------------------------

def html_text(value: object) -> str:
    """Text for HTML: every ``<``, ``>``, ``&`` and quote escaped, so customer text never becomes markup.

    >>> html_text('<img src=x onerror="alert(1)">')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    """
    import html

    return html.escape("" if value is None else str(value), quote=True)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def md_escape(value: object) -> str:
    """Text for Markdown: HTML escaped and Markdown syntax neutralised (no links, images, emphasis or headings
    can come from customer text).

    >>> md_escape("[click](javascript:alert(1)) <b>x</b>")
    '\\\\[click\\\\]\\\\(javascript:alert\\\\(1\\\\)\\\\) &lt;b&gt;x&lt;/b&gt;'
    """
    return _MD_SPECIAL.sub(r"\\\1", html_text(value))


# OWASP "CSV injection": a cell starting with one of these is read as a formula by spreadsheet programs.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise_cell(value: object) -> object:
    """Prefix text cells that a spreadsheet would run as a formula with a single quote (numbers pass unchanged).

    >>> neutralise_cell("=cmd|' /C calc'!A0"), neutralise_cell("-5"), neutralise_cell(-5), neutralise_cell("ok")
    ("'=cmd|' /C calc'!A0", "'-5", -5, 'ok')
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def neutralise_frame(df):
    """A copy of ``df`` whose text cells and column names are safe to open in a spreadsheet."""
    import pandas as pd

    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
            out[col] = s.map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def write_csv_safe(df, path) -> None:
    """Write a CSV export that customer text cannot turn into spreadsheet formulas (UTF-8 with BOM, which Excel
    needs to read accents)."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    neutralise_frame(df).to_csv(path, index=False, encoding="utf-8-sig")


def inline_markup(text: str) -> str:
    """Escape ``text`` for HTML, then allow only **bold** and `code` (no links, images or raw HTML).

    >>> inline_markup("**Ship** <script>x</script> `a_b`")
    '<strong>Ship</strong> &lt;script&gt;x&lt;/script&gt; <code>a_b</code>'
    """
    out = html_text(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return out.replace("\n\n", "</p><p>").replace("\n", " ")
