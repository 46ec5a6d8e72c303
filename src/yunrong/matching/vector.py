"""The matching rules of :mod:`yunrong.matching.model`, columnar, for many investors at once.

Why: pushing one new listing means ranking *every* investor against it, and "recommended for
you" for everybody means ranking every open listing for every investor. The scalar rules in
``model.py`` stay the single source of truth; this module encodes profiles and listings as NumPy
columns and gives **exactly** the same verdicts, the same rounded scores and the same order (ties
by index), which ``tests/unit/test_matching_vector.py`` checks against the scalar path.

Encoding (:class:`ProfileMatrix`): integer codes for currency, innovation and risk level; bitmasks
for the chosen grades, products and enterprise sizes (an empty choice = every bit); each distinct
industry / region prefix set once, with a bitset over the prefixes seen, so that a listing's code
matches when one of its own prefixes (``code[:0] … code[:len]``) is in the set.

* :func:`rank_investors` evaluates every rule exactly, element-wise, over all investors.
* :func:`top_k_listings` computes, per chunk of investors, one ``float32`` matrix product whose
  entries are a quarter of the score minus one per broken categorical rule (grades with the risk
  level, currency, product, size, term range with the term centrality, innovation, industry and
  region prefixes), subtracts one where a threshold (amount, transparency, guarantee) fails,
  keeps the best ``k + margin`` per row (``argpartition``) and re-checks and re-scores those
  candidates exactly. A row whose exact top ``k`` is not provably above every left-out entry
  (floating-point error bound of the product) is recomputed exactly over all listings.

Scores are summed in the same order as ``model.score`` and rounded as Python's ``round(x, 6)``
(correctly rounded, half to even on the exact binary value). The summation mirrors Python 3.11's
``sum``; Python 3.12 changed ``sum`` of floats to compensated summation, which the property test
would catch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from yunrong.demands.model import Product
from yunrong.matching import model
from yunrong.parties.risk import RiskLevel, max_product_risk
from yunrong.supervision.policy import PolicyProfile

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Array = npt.NDArray[Any]

GRADES: tuple[str, ...] = tuple(model.GRADE_RISK)
GRADE_INDEX = {g: i for i, g in enumerate(GRADES)}
GRADE_RISKS = np.array([model.GRADE_RISK[g] for g in GRADES], dtype=np.int8)
LEVELS: tuple[RiskLevel, ...] = tuple(RiskLevel)
LEVEL_CODE = {lvl: max_product_risk(lvl) for lvl in LEVELS}  # 1..5; 0 = no assessment
INNOVATION_CODE = {model.Innovation.NEUTRAL: 0, model.Innovation.PREFER: 1, model.Innovation.ONLY: 2}
_OTHER_BIT = 31  # products / sizes outside the vocabulary (never chosen by anybody)
_ALL = np.uint32(0xFFFFFFFF)
_W_FIT, _W_RET, _W_DIV, _W_TR = (
    model.WEIGHTS[k] for k in ("fit", "return", "diversification", "transparency")
)
assert list(model.WEIGHTS) == ["fit", "return", "diversification", "transparency"]

#: top_k_listings: the product holds a quarter of the score, a broken rule costs 1.
_SCALE = 0.25
_PENALTY = 1.0


# --- small helpers -----------------------------------------------------------------------------------


def _take(col: Array, idx: Array | None) -> Array:
    return col if idx is None else col[idx]


def _bits_vocab(known: Sequence[str], chosen: Sequence[frozenset[str]], what: str) -> dict[str, int]:
    vocab = {v: i for i, v in enumerate(known)}
    for s in chosen:
        for v in sorted(s - vocab.keys()):
            vocab[v] = len(vocab)
    if len(vocab) > _OTHER_BIT:
        raise ValueError(f"more than {_OTHER_BIT} distinct {what} values")
    return vocab


def _set_masks(chosen: Sequence[frozenset[str]], vocab: Mapping[str, int]) -> npt.NDArray[np.uint32]:
    cache: dict[frozenset[str], int] = {}
    out = np.empty(len(chosen), dtype=np.uint32)
    for i, s in enumerate(chosen):
        m = cache.get(s)
        if m is None:
            m = 0xFFFFFFFF if not s else sum(1 << vocab[v] for v in s)
            cache[s] = m
        out[i] = m
    return out


def _bit_of(values: Sequence[str], vocab: Mapping[str, int]) -> npt.NDArray[np.uint32]:
    return np.array([1 << vocab.get(v, _OTHER_BIT) for v in values], dtype=np.uint32)


def _antichain(prefixes: set[str]) -> frozenset[str]:
    """The minimal prefixes: dropping a prefix that extends another one matches the same codes."""
    kept: list[str] = []
    for w in sorted(prefixes, key=len):
        if not any(w.startswith(u) for u in kept):
            kept.append(w)
    return frozenset(kept)


def round6(x: FloatArray) -> FloatArray:
    """Element-wise ``round(x, 6)`` exactly as Python rounds a float (half to even on the exact
    binary value, then the nearest double)."""
    y = x * 1e6
    n = np.rint(y)
    floor = np.floor(y)
    half = (y - floor) == 0.5
    if half.any():
        # y = x·1e6 rounded; its exact error e (Dekker's two-product) decides a tie that is not one.
        a, p = x[half], y[half]
        split = 134217729.0
        c = split * a
        ah = c - (c - a)
        al = a - ah
        bh, bl = 1e6, 0.0  # 1e6 has fewer than 27 significant bits: it splits exactly
        e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
        n[half] = np.where(e > 0, floor[half] + 1, np.where(e < 0, floor[half], n[half]))
    out: FloatArray = n / 1e6
    return out


# --- prefix sets (industries, regions) ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PrefixSets:
    """The distinct prefix sets of one preference (industries or regions) among the profiles."""

    sets: tuple[frozenset[str], ...]  # distinct, by set id
    ids: npt.NDArray[np.int32]  # set id of each profile
    vocab: dict[str, int]  # every prefix that occurs → bit position
    masks: npt.NDArray[np.uint64]  # (sets, words) bitsets over vocab
    empty: BoolArray  # (sets,) the empty set = any code

    @classmethod
    def build(cls, chosen: Sequence[frozenset[str]]) -> PrefixSets:
        index: dict[frozenset[str], int] = {}
        ids = np.fromiter(
            (index.setdefault(s, len(index)) for s in chosen), dtype=np.int32, count=len(chosen)
        )
        sets = tuple(index)
        vocab: dict[str, int] = {}
        for s in sets:
            for w in sorted(s):
                vocab.setdefault(w, len(vocab))
        words = max(1, (len(vocab) + 63) // 64)
        masks = np.zeros((len(sets), words), dtype=np.uint64)
        for i, s in enumerate(sets):
            for w in s:
                b = vocab[w]
                masks[i, b // 64] |= np.uint64(1 << (b % 64))
        empty = np.array([not s for s in sets], dtype=bool)
        return cls(sets, ids, vocab, masks, empty)

    def code_bits(self, codes: Sequence[str]) -> npt.NDArray[np.uint64]:
        """(len(codes), words): the bits of each code's own prefixes that some profile chose."""
        out = np.zeros((len(codes), self.masks.shape[1]), dtype=np.uint64)
        for j, code in enumerate(codes):
            for q in range(len(code) + 1):
                b = self.vocab.get(code[:q])
                if b is not None:
                    out[j, b // 64] |= np.uint64(1 << (b % 64))
        return out

    def match(self, set_ids: Array, bits: npt.NDArray[np.uint64]) -> BoolArray:
        """Does each profile's set (by set id) match the code whose bits are given (broadcast)?"""
        hit = np.zeros(np.broadcast_shapes(set_ids.shape, bits.shape[:-1]), dtype=bool)
        for w in range(self.masks.shape[1]):
            hit |= (self.masks[set_ids, w] & bits[..., w]) != 0
        out: BoolArray = hit | self.empty[set_ids]
        return out

    def relaxed(self, max_features: int) -> tuple[list[str], npt.NDArray[np.float32], BoolArray]:
        """A coarser, prefix-free form for the matrix product: prefixes cut to the longest length
        that keeps at most ``max_features`` of them (a coarser set matches at least the same
        codes). Returns the feature prefixes, the (sets, features) 0/1 matrix and which sets are
        non-empty. Prefix-free sets guarantee at most one of a code's prefixes is in a set."""
        longest = max((len(w) for s in self.sets for w in s), default=0)
        for cut in range(longest, -1, -1):
            reduced = [_antichain({w[:cut] for w in s}) if s else frozenset() for s in self.sets]
            feats = sorted(set().union(*reduced)) if reduced else []
            if len(feats) <= max_features or cut == 0:
                break
        pos = {w: i for i, w in enumerate(feats)}
        x = np.zeros((len(self.sets), len(feats)), dtype=np.float32)
        for i, s in enumerate(reduced):
            for w in s:
                x[i, pos[w]] = 1.0
        return feats, x, ~self.empty


# --- profiles and listings ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ProfileMatrix:
    """Many investors' preferences and profiles as columns; row ``i`` = the ``i``-th pair given."""

    n: int
    currencies: dict[str, int]
    currency: npt.NDArray[np.int16]
    amount: IntArray
    min_term: IntArray
    max_term: IntArray
    grade_mask: npt.NDArray[np.uint32]
    products: dict[str, int]
    product_mask: npt.NDArray[np.uint32]
    sizes: dict[str, int]
    size_mask: npt.NDArray[np.uint32]
    industries: PrefixSets
    regions: PrefixSets
    innovation: npt.NDArray[np.int8]
    min_transparency: IntArray
    min_coverage: IntArray
    person: BoolArray
    level: npt.NDArray[np.int8]  # 0 = not assessed, else 1..5
    net_worth: IntArray
    sections: dict[str, int]  # industry section letter → column of ``pushes``
    pushes: npt.NDArray[np.int32]  # (n, sections): pushes already made per section
    _cache: dict[tuple[Decimal | None, int | None], BoolArray] = field(default_factory=dict, repr=False)

    @classmethod
    def from_profiles(
        cls,
        items: Sequence[tuple[model.Preferences, model.InvestorProfile]],
        industry_pushes: Sequence[Mapping[str, int]] | None = None,
    ) -> ProfileMatrix:
        """Encode ``(preferences, profile)`` pairs; ``industry_pushes[i]`` maps an industry
        section letter to the pushes investor ``i`` already had in it (as the service counts)."""
        prefs = [p for p, _ in items]
        invs = [v for _, v in items]
        n = len(items)
        currencies: dict[str, int] = {}
        currency = np.fromiter(
            (currencies.setdefault(p.currency, len(currencies)) for p in prefs), np.int16, n
        )
        grade_vocab = {g: i for i, g in enumerate(GRADES)}
        grade_cache: dict[frozenset[str], int] = {}
        grade_mask = np.empty(n, dtype=np.uint32)
        for i, p in enumerate(prefs):
            m = grade_cache.get(p.grades)
            if m is None:
                m = (
                    0xFFFFFFFF
                    if not p.grades
                    else sum(1 << grade_vocab[g] for g in p.grades if g in grade_vocab)
                )
                grade_cache[p.grades] = m
            grade_mask[i] = m
        products = _bits_vocab([x.value for x in Product], [p.products for p in prefs], "product")
        sizes = _bits_vocab(list(model.SIZES), [p.sizes for p in prefs], "size")
        sections: dict[str, int] = {}
        counts = industry_pushes or []
        for c in counts:
            for s in c:
                sections.setdefault(s, len(sections))
        pushes = np.zeros((n, len(sections)), dtype=np.int32)
        for i, c in enumerate(counts):
            for s, k in c.items():
                pushes[i, sections[s]] = k

        def ints(values: Any) -> IntArray:
            return np.fromiter(values, dtype=np.int64, count=n)

        return cls(
            n=n,
            currencies=currencies,
            currency=currency,
            amount=ints(p.amount_per_loan_minor for p in prefs),
            min_term=ints(p.min_term_months for p in prefs),
            max_term=ints(p.max_term_months for p in prefs),
            grade_mask=grade_mask,
            products=products,
            product_mask=_set_masks([p.products for p in prefs], products),
            sizes=sizes,
            size_mask=_set_masks([p.sizes for p in prefs], sizes),
            industries=PrefixSets.build([p.industries for p in prefs]),
            regions=PrefixSets.build([p.regions for p in prefs]),
            innovation=np.fromiter((INNOVATION_CODE[p.innovation] for p in prefs), np.int8, n),
            min_transparency=ints(p.min_transparency for p in prefs),
            min_coverage=ints(p.min_guarantee_coverage_bp for p in prefs),
            person=np.fromiter((v.kind == "person" for v in invs), bool, n),
            level=np.fromiter((LEVEL_CODE[v.risk_level] if v.risk_level else 0 for v in invs), np.int8, n),
            net_worth=ints(v.net_worth_minor for v in invs),
            sections=sections,
            pushes=pushes,
        )

    def suitable_base(self, policy: PolicyProfile) -> BoolArray:
        """What ``model.suitable`` asks of the investor alone, whatever the listing: a risk level,
        and (under a profile with a warning threshold) an amount per loan within the threshold.
        Computed once per policy and kept."""
        key = (policy.warning_net_worth_share, policy.warning_ticket_floor)
        cached = self._cache.get(key)
        if cached is None:
            cached = (self.level > 0) & self._ticket_ok(policy)
            self._cache[key] = cached
        return cached

    def _ticket_ok(self, policy: PolicyProfile) -> BoolArray:
        share = policy.warning_net_worth_share
        if share is None:
            return np.ones(self.n, dtype=bool)
        floor = policy.warning_ticket_floor or 0
        frac = Fraction(share)
        most = int(np.abs(self.net_worth).max(initial=0))
        if most * abs(frac.numerator) >= 2**62 or len(str(most)) + len(share.as_tuple().digits) > 28:
            # beyond exact int64 arithmetic, or Decimal would round the product: the scalar expression
            limits = [max(floor, int(Decimal(int(w)) * share)) for w in self.net_worth]
            within = np.array([a <= t for a, t in zip(self.amount.tolist(), limits, strict=True)], dtype=bool)
            slow: BoolArray = ~self.person | within
            return slow
        prod = self.net_worth * frac.numerator
        den = frac.denominator
        trunc = np.where(prod >= 0, prod // den, -((-prod) // den))  # int() truncates toward zero
        ok: BoolArray = ~self.person | (self.amount <= np.maximum(trunc, floor))
        return ok


@dataclass(frozen=True, eq=False)
class ListingMatrix:
    """Many listings as columns; ``ret[j, l]`` is the score's return term at risk level ``l + 1``."""

    n: int
    demand_ids: tuple[str, ...]
    currency: tuple[str, ...]
    amount: IntArray
    term: IntArray
    product: tuple[str, ...]
    grade: npt.NDArray[np.int8]
    risk: npt.NDArray[np.int8]
    ret: FloatArray  # (n, 5)
    declined: BoolArray
    industry_code: tuple[str, ...]
    region_code: tuple[str, ...]
    size_class: tuple[str, ...]
    innovative: BoolArray
    transparency: IntArray
    coverage: IntArray

    @classmethod
    def from_listings(cls, listings: Sequence[model.Listing]) -> ListingMatrix:
        n = len(listings)

        def ints(values: Any) -> IntArray:
            return np.fromiter(values, dtype=np.int64, count=n)

        grade = np.fromiter((GRADE_INDEX[x.grade] for x in listings), np.int8, n)
        ret = np.empty((n, len(LEVELS)), dtype=np.float64)
        for j, x in enumerate(listings):
            er = model.expected_return(x)
            for k, lvl in enumerate(LEVELS):  # the expression of model.score
                ret[j, k] = float(min(Decimal(1), max(Decimal(0), er / model.TARGET_RETURN[lvl])))
        return cls(
            n=n,
            demand_ids=tuple(x.demand_id for x in listings),
            currency=tuple(x.currency for x in listings),
            amount=ints(x.amount_minor for x in listings),
            term=ints(x.term_months for x in listings),
            product=tuple(x.product for x in listings),
            grade=grade,
            risk=GRADE_RISKS[grade],
            ret=ret,
            declined=np.fromiter((x.declined for x in listings), bool, n),
            industry_code=tuple(x.industry_code for x in listings),
            region_code=tuple(x.region_code for x in listings),
            size_class=tuple(x.size_class for x in listings),
            innovative=np.fromiter((x.innovative for x in listings), bool, n),
            transparency=ints(x.transparency for x in listings),
            coverage=ints(x.guarantee_coverage_bp for x in listings),
        )


@dataclass(frozen=True, eq=False)
class _Aligned:
    """Listing columns expressed in a profile matrix's vocabularies."""

    currency: IntArray  # -1: nobody's currency
    product_bit: npt.NDArray[np.uint32]
    size_bit: npt.NDArray[np.uint32]
    grade_bit: npt.NDArray[np.uint32]
    industry_bits: npt.NDArray[np.uint64]
    region_bits: npt.NDArray[np.uint64]
    section: IntArray  # column of ProfileMatrix.pushes, -1: none yet
    transparency_part: FloatArray  # max(0, min(100, t)) / 100


def _align(pm: ProfileMatrix, lm: ListingMatrix) -> _Aligned:
    return _Aligned(
        currency=np.array([pm.currencies.get(c, -1) for c in lm.currency], dtype=np.int64),
        product_bit=_bit_of(lm.product, pm.products),
        size_bit=_bit_of(lm.size_class, pm.sizes),
        grade_bit=(np.uint32(1) << lm.grade.astype(np.uint32)).astype(np.uint32),
        industry_bits=pm.industries.code_bits(lm.industry_code),
        region_bits=pm.regions.code_bits(lm.region_code),
        section=np.array([pm.sections.get(c[:1], -1) for c in lm.industry_code], dtype=np.int64),
        transparency_part=np.clip(lm.transparency, 0, 100) / 100,
    )


# --- the exact rules, element-wise over (investor, listing) pairs ------------------------------------


def _valid(
    pm: ProfileMatrix, lm: ListingMatrix, al: _Aligned, i: Array | None, j: Array, policy: PolicyProfile
) -> BoolArray:
    """``model.fits(...)[0] and not model.suitable(...)`` for the pairs (i, j), broadcast;
    ``i=None`` means every profile (then ``j`` is one listing index)."""
    ok = _take(pm.currency, i) == al.currency[j]
    ok &= _take(pm.amount, i) <= lm.amount[j]
    term = lm.term[j]
    ok &= (_take(pm.min_term, i) <= term) & (term <= _take(pm.max_term, i))
    ok &= (_take(pm.grade_mask, i) & al.grade_bit[j]) != 0
    ok &= (_take(pm.product_mask, i) & al.product_bit[j]) != 0
    ok &= (_take(pm.size_mask, i) & al.size_bit[j]) != 0
    ok &= (_take(pm.innovation, i) != 2) | lm.innovative[j]
    ok &= lm.transparency[j] >= _take(pm.min_transparency, i)
    ok &= lm.coverage[j] >= _take(pm.min_coverage, i)
    ok &= ~lm.declined[j]
    ok &= lm.risk[j] <= _take(pm.level, i)
    ok &= _take(pm.suitable_base(policy), i)
    if i is None and np.ndim(j) == 0:  # one listing: match each distinct set once
        ok &= pm.industries.match(np.arange(len(pm.industries.sets)), al.industry_bits[j])[pm.industries.ids]
        ok &= pm.regions.match(np.arange(len(pm.regions.sets)), al.region_bits[j])[pm.regions.ids]
    else:
        ok &= pm.industries.match(_take(pm.industries.ids, i), al.industry_bits[j])
        ok &= pm.regions.match(_take(pm.regions.ids, i), al.region_bits[j])
    out: BoolArray = ok
    return out


def _score(
    pm: ProfileMatrix,
    lm: ListingMatrix,
    al: _Aligned,
    i: Array,
    j: Array,
    same_industry: Array | None = None,
) -> FloatArray:
    """``model.score(...).total`` for the pairs (i, j), broadcast, in the same float operations."""
    lo, hi = pm.min_term[i], pm.max_term[i]
    span = hi - lo
    middle = (hi + lo) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        centrality = np.where(span <= 0, 1.0, np.maximum(0.0, 1 - np.abs(lm.term[j] - middle) / span))
    innov = pm.innovation[i]
    innovation = np.where(innov == 0, 0.5, np.where(lm.innovative[j], 1.0, 0.0))
    fit = 0.5 * centrality + 0.5 * innovation
    ret = lm.ret[j, np.maximum(pm.level[i], 1) - 1]
    if same_industry is None:
        sec = al.section[j]
        if pm.pushes.shape[1]:
            n = np.where(sec >= 0, pm.pushes[i, np.maximum(sec, 0)], 0)
        else:
            n = np.zeros(np.broadcast_shapes(np.shape(i), np.shape(j)), dtype=np.int64)
    else:
        n = same_industry
    diversification = 1 / (1 + np.maximum(0, n))
    total = _W_FIT * fit + _W_RET * ret
    total = total + _W_DIV * diversification
    total = total + _W_TR * al.transparency_part[j]
    return round6(np.asarray(total, dtype=np.float64))


# --- push: one listing against every investor --------------------------------------------------------


def rank_investors(
    profiles: ProfileMatrix,
    listing: model.Listing,
    policy: PolicyProfile,
    same_industry_pushes: npt.ArrayLike | None = None,
) -> tuple[IntArray, FloatArray]:
    """Indices of the investors the listing fits and suits, best first, and their scores — the
    set, the scores and the order of ``service.push_listing`` (``match`` then sort by score,
    ties by investor). Ties go by index: encode the profiles in the service's investor order
    (``str(organisation_id)`` ascending) to reproduce it. ``same_industry_pushes[i]`` is how many
    listings of this listing's industry section investor ``i`` was pushed already; without it the
    counts given to :meth:`ProfileMatrix.from_profiles` are used."""
    lm = ListingMatrix.from_listings([listing])
    al = _align(profiles, lm)
    zero = np.zeros((), dtype=np.int64)  # the one listing
    ok = _valid(profiles, lm, al, None, zero, policy)
    idx = np.flatnonzero(ok)
    same = None if same_industry_pushes is None else np.asarray(same_industry_pushes)[idx]
    scores = _score(profiles, lm, al, idx, zero, same)
    order = np.argsort(-scores, kind="stable")  # idx ascending, so ties stay by index
    return idx[order], scores[order]


# --- recommendations: top k listings for every investor ----------------------------------------------


@dataclass(frozen=True, eq=False)
class _Product:
    """The relaxed rules as one matrix product ``x @ y`` plus the threshold ranks."""

    x: npt.NDArray[np.float32]  # (investors, F)
    y: npt.NDArray[np.float32]  # (F, listings)
    eps: float  # bound of the product's error on a valid pair, in score units
    amount_q: Array
    amount_r: Array
    transparency_q: Array
    transparency_r: Array
    coverage_q: Array
    coverage_r: Array


def _ranks(profile_min: IntArray, listing_value: IntArray) -> tuple[Array, Array]:
    """``listing_value[j] >= profile_min[i]`` ⟺ ``r[j] >= q[i]``, with small integers."""
    uniq = np.unique(listing_value)
    dtype = np.int16 if len(uniq) < 2**15 else np.int32
    r = np.searchsorted(uniq, listing_value).astype(dtype)
    q = np.searchsorted(uniq, profile_min, side="left").astype(dtype)
    return q, r


def _one_hot(codes: Array, width: int) -> npt.NDArray[np.float32]:
    y = np.zeros((width, len(codes)), dtype=np.float32)
    y[codes, np.arange(len(codes))] = 1.0
    return y


def _product(
    pm: ProfileMatrix, lm: ListingMatrix, al: _Aligned, policy: PolicyProfile, prefix_features: int
) -> _Product:
    n, s, pen = pm.n, _SCALE, _PENALTY
    xs: list[Array] = []
    ys: list[Array] = []

    def block(x: Array, y: Array) -> None:
        if np.size(y) == 0:
            return
        xs.append(np.asarray(x, dtype=np.float32).reshape(n, -1))
        ys.append(np.asarray(y, dtype=np.float32).reshape(xs[-1].shape[1], lm.n))

    # industry / region: +1 on the (prefix-free, coarsened) chosen prefixes, -1 when any is chosen
    nonempty = np.zeros(n)
    for sets, codes in ((pm.industries, lm.industry_code), (pm.regions, lm.region_code)):
        feats, xset, has = sets.relaxed(prefix_features)
        pos = {w: k for k, w in enumerate(feats)}
        y = np.zeros((len(feats), lm.n), dtype=np.float32)
        for j, code in enumerate(codes):
            for q in range(len(code) + 1):
                k = pos.get(code[:q])
                if k is not None:
                    y[k, j] = 1.0
        block(pen * xset[sets.ids], y)
        nonempty += has[sets.ids]
    unsuitable = ~pm.suitable_base(policy)
    block(-pen * (nonempty + unsuitable), np.ones(lm.n))
    block(np.ones(n), s * _W_TR * al.transparency_part - pen * lm.declined)
    # currency
    width = len(pm.currencies) + 1
    cur = np.where(al.currency >= 0, al.currency, width - 1)
    block(np.where(np.arange(width) == pm.currency[:, None], 0.0, -pen), _one_hot(cur, width))
    # grade, with the risk level's ceiling
    g = np.arange(len(GRADES))
    chosen = ((pm.grade_mask[:, None] >> g.astype(np.uint32)) & 1) == 1
    block(
        np.where(chosen & (GRADE_RISKS[g] <= pm.level[:, None]), 0.0, -pen), _one_hot(lm.grade, len(GRADES))
    )
    # product and size bits (bit 31: a value nobody chose)
    for mask, bits in ((pm.product_mask, al.product_bit), (pm.size_mask, al.size_bit)):
        used = np.unique(bits)
        cols = np.searchsorted(used, bits)
        block(np.where((mask[:, None] & used) != 0, 0.0, -pen), _one_hot(cols, len(used)))
    # innovation: the fit's innovation half, and "only" excludes the others
    half = s * _W_FIT * 0.5
    inn_yes = np.where(pm.innovation == 0, 0.5, 1.0) * half
    inn_no = np.where(pm.innovation == 0, 0.5, 0.0) * half - pen * (pm.innovation == 2)
    block(np.stack([inn_yes, inn_no], axis=1), np.stack([lm.innovative, ~lm.innovative]))
    # term: the fit's centrality half inside the investor's range, a penalty outside
    terms, term_col = np.unique(lm.term, return_inverse=True)
    lo, hi = pm.min_term[:, None], pm.max_term[:, None]
    span = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        cent = np.where(span <= 0, 1.0, np.maximum(0.0, 1 - np.abs(terms - (hi + lo) / 2) / span))
    block(np.where((lo <= terms) & (terms <= hi), half * cent, -pen), _one_hot(term_col, len(terms)))
    # expected return by risk level
    lvl = np.maximum(pm.level, 1) - 1
    block(np.arange(len(LEVELS)) == lvl[:, None], s * _W_RET * lm.ret.T)
    # diversification by industry section (last column: a section nobody was pushed yet)
    width = len(pm.sections) + 1
    div = np.ones((n, width))
    div[:, : width - 1] = 1 / (1 + np.maximum(0, pm.pushes))
    sec = np.where(al.section >= 0, al.section, width - 1)
    block(s * _W_DIV * div, _one_hot(sec, width))

    x = np.ascontiguousarray(np.concatenate(xs, axis=1))
    y = np.ascontiguousarray(np.concatenate(ys, axis=0))
    features = x.shape[1]
    # |error| <= γ·Σ|x·y| (+ the rounding of the inputs to float32); on a valid pair Σ|x·y| is
    # at most s (the score) + 2·pen per prefix dimension.
    bound = 2 * (features + 4) * 2.0**-24 * (s + 4 * pen)
    aq, ar = _ranks(pm.amount, lm.amount)
    tq, tr = _ranks(pm.min_transparency, lm.transparency)
    cq, cr = _ranks(pm.min_coverage, lm.coverage)
    return _Product(x, y, bound / s, aq, ar, tq, tr, cq, cr)


def feature_count(
    profiles: ProfileMatrix, listings: ListingMatrix, policy: PolicyProfile, prefix_features: int = 64
) -> int:
    """F, the width of the matrix product :func:`top_k_listings` computes (for the benchmark)."""
    return int(_product(profiles, listings, _align(profiles, listings), policy, prefix_features).x.shape[1])


def _top_exact(
    pm: ProfileMatrix,
    lm: ListingMatrix,
    al: _Aligned,
    policy: PolicyProfile,
    i: IntArray,
    j: IntArray,
    k: int,
) -> tuple[IntArray, FloatArray, IntArray, FloatArray]:
    """For pairs i (rows, 1) × j (rows, m): the exact best k of each row (-1 / nan padded),
    how many pairs of the row are valid, and the row's k-th exact score (-inf if fewer)."""
    valid = _valid(pm, lm, al, i, j, policy)
    score = np.where(valid, _score(pm, lm, al, i, j), -np.inf)
    order = np.lexsort((j, -score), axis=-1)[:, :k]
    top_j = np.take_along_axis(j, order, axis=1)
    top_s = np.take_along_axis(score, order, axis=1)
    nvalid = valid.sum(axis=1)
    kth = top_s[:, -1] if top_s.shape[1] == k else np.full(len(top_s), -np.inf)
    keep = np.isfinite(top_s)
    out_j: IntArray = np.where(keep, top_j, -1)
    out_s: FloatArray = np.where(keep, top_s, np.nan)
    if out_j.shape[1] < k:
        pad = k - out_j.shape[1]
        out_j = np.pad(out_j, ((0, 0), (0, pad)), constant_values=-1)
        out_s = np.pad(out_s, ((0, 0), (0, pad)), constant_values=np.nan)
    return out_j, out_s, nvalid, kth


def top_k_listings(
    profiles: ProfileMatrix,
    listings: ListingMatrix,
    policy: PolicyProfile,
    k: int = 20,
    *,
    chunk: int = 1000,
    margin: int = 12,
    prefix_features: int = 64,
    stats: dict[str, float] | None = None,
) -> tuple[IntArray, FloatArray]:
    """For every investor, the ``k`` best listings that fit and suit, best first: ``(indices,
    scores)`` of shape ``(investors, k)``, padded with ``-1`` / ``nan``. Ties go by listing
    index (encode listings in ``demand_id`` order to reproduce ``service.recommendations``).
    The investor's industry pushes are those given to :meth:`ProfileMatrix.from_profiles`.
    ``stats`` (if given) receives ``features`` (F) and ``fallback_rows``."""
    pm, lm = profiles, listings
    al = _align(pm, lm)
    out_j = np.full((pm.n, k), -1, dtype=np.int64)
    out_s = np.full((pm.n, k), np.nan)
    fallbacks = 0
    if pm.n == 0 or lm.n == 0 or k <= 0:
        if stats is not None:
            stats.update(features=0, fallback_rows=0)
        return out_j, out_s
    prod = _product(pm, lm, al, policy, prefix_features)
    width = min(lm.n, k + margin)
    for start in range(0, pm.n, chunk):
        stop = min(pm.n, start + chunk)
        a = prod.x[start:stop] @ prod.y
        broken = prod.amount_q[start:stop, None] > prod.amount_r
        broken |= prod.transparency_q[start:stop, None] > prod.transparency_r
        broken |= prod.coverage_q[start:stop, None] > prod.coverage_r
        np.subtract(a, broken, out=a)
        if width < lm.n:
            cand = np.argpartition(a, lm.n - width, axis=1)[:, lm.n - width :]
        else:
            cand = np.broadcast_to(np.arange(lm.n), (stop - start, lm.n))
        floor = np.take_along_axis(a, cand, axis=1).min(axis=1).astype(np.float64) / _SCALE
        rows = np.arange(start, stop)[:, None]
        top_j, top_s, nvalid, kth = _top_exact(pm, lm, al, policy, rows, np.asarray(cand, dtype=np.int64), k)
        if width < lm.n:
            # left-out entries are <= floor; a valid one scores <= floor + eps (and >= -eps)
            proven = np.where(nvalid >= k, floor + prod.eps + 1e-6 < kth, floor < -prod.eps)
        else:
            proven = np.ones(stop - start, dtype=bool)
        out_j[start:stop], out_s[start:stop] = top_j, top_s
        for r in np.flatnonzero(~proven):
            fallbacks += 1
            every = np.arange(lm.n, dtype=np.int64)[None, :]
            fj, fs, _, _ = _top_exact(pm, lm, al, policy, np.array([[start + r]]), every, k)
            out_j[start + r], out_s[start + r] = fj[0], fs[0]
    if stats is not None:
        stats.update(features=float(prod.x.shape[1]), fallback_rows=float(fallbacks))
    return out_j, out_s
