"""hOCR for a whole document, built from its pages' lines and words."""

from collections.abc import Sequence
from html import escape

from ocrflow.pipeline.result import PageResult

HOCR_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>ocrflow</title>
  <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>
  <meta name="ocr-system" content="ocrflow (tesseract)"/>
  <meta name="ocr-capabilities" content="ocr_page ocr_line ocrx_word"/>
 </head>
 <body>
"""
HOCR_TAIL = " </body>\n</html>\n"


def hocr_document(pages: Sequence[PageResult]) -> str:
    return HOCR_HEAD + "".join(hocr_page(page) + "\n" for page in pages) + HOCR_TAIL


def hocr_page(page: PageResult) -> str:
    """A page's lines and words, with their boxes and confidences, whichever way it was read."""
    n = page.number
    out = [
        f"  <div class='ocr_page' id='page_{n}' "
        f"title='bbox 0 0 {page.width} {page.height}; ppageno {n - 1}'>"
    ]
    for li, line in enumerate(page.lines, start=1):
        out.append(f"   <span class='ocr_line' id='line_{n}_{li}' title='bbox {_bbox(line.bbox)}'>")
        for wi, word in enumerate(line.words, start=1):
            title = f"bbox {_bbox(word.bbox)}; x_wconf {round(word.confidence)}"
            out.append(
                f"    <span class='ocrx_word' id='word_{n}_{li}_{wi}' title='{title}'>"
                f"{escape(word.text)}</span>"
            )
        out.append("   </span>")
    out.append("  </div>")
    return "\n".join(out)


def _bbox(box: tuple[int, int, int, int]) -> str:
    return " ".join(str(value) for value in box)
