"""The book's teaching layer, on top of the MLM chain: tables (``display``), figures (``plots``),
notebook widgets (``widgets``) and their browser twin (``explorer``), exercise checkers
(``exercises``, a module per chapter), the chapters' tolerant checks of trained models (``claims``)
and the student edition of the notebooks (``coursework``). Nothing in the chain imports from here."""
