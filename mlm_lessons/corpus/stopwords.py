"""English stop words: the function words that every domain shares and that say nothing about
its topic. Measures of domain similarity (vocabulary overlap) leave them out."""

from __future__ import annotations

__all__ = ["STOP_WORDS"]

#: Articles, pronouns, auxiliaries, prepositions, conjunctions and other closed-class words, lowercase.
STOP_WORDS = frozenset("""
a about above after again against all almost along already also although always am among an and
another any anyone anything are around as at be became because become becomes been before being
below between both but by can cannot could did do does doing done down during each either else
enough etc even ever every few for from further had has have having he her here hers herself him
himself his how however i if in into is it its itself just least less many may me might mine more
most much must my myself neither never no nor not now of off often on once one only onto or other
others otherwise our ours ourselves out over own per perhaps quite rather same several shall she
should since so some still such than that the their theirs them themselves then there therefore
these they this those though through thus to too toward towards under until up upon us very via
was we well were what whatever when whenever where whether which while who whom whose why will with
within without would yet you your yours yourself yourselves
""".split())
