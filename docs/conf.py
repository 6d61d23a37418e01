"""Sphinx configuration of lstmae's documentation site (built by `make docs`).

The user guide and the benchmark pages are MyST Markdown, the API reference is
generated from numpydoc docstrings (its list of modules is docs/api.rst, the
one file to edit when modules move) and the gallery runs docs/examples/plot_*.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Document the source tree next to this file, installed or not (make docs installs it editable anyway).
sys.path.insert(0, str(HERE.parent / "src"))
# The gallery's examples train small models on the build machine's shared cores: keep them quiet and
# on one thread each, so the whole build stays within a few minutes on 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import lstmae  # noqa: E402

project = "lstmae"
author = "lstmae developers"
copyright = "lstmae developers, MIT license"
version = release = lstmae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples/README.txt", "**/README.md"]
templates_path = ["_templates"]
# `name` in docstrings is code, not a citation (docstrings use single backticks for names).
default_role = "literal"

# ---------------------------------------------------------------- API reference
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
autodoc_default_options = {"inherited-members": False}
numpydoc_show_class_members = False  # the class templates list the methods themselves
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()  # the docstrings are checked by reading, not by rule
numpydoc_xref_param_type = False

# ---------------------------------------------------------------- Markdown
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links in the guide

# ---------------------------------------------------------------- gallery
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "plot_gallery": "True",
    "abort_on_example_error": True,
}

# ---------------------------------------------------------------- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"lstmae {release}"
html_static_path = ["_static"]
html_css_files = ["lstmae.css"]
toc_object_entries_show_parents = "hide"  # "fit()" in a page's table of contents, not "LSTMAutoencoder.fit()"
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    # The shape walk on this page is 100 columns of monospace: give it the right column's room too.
    "secondary_sidebar_items": {"**": ["page-toc"], "guide/concepts": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
