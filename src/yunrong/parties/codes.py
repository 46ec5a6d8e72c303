"""Chinese identification and classification codes: credit codes, resident IDs, industries, regions.

Every ``validate_*`` function checks exactly the text it is given (the caller strips and
upper-cases input) and returns a list of human-readable problems, empty when the code is valid,
so that a form can show all problems at once.

- Unified social credit code (统一社会信用代码), GB 32100-2015.
- Citizen identity number (公民身份号码), GB 11643-1999.
- Industry classification (国民经济行业分类), GB/T 4754-2017, validated to the division level.
- Administrative division codes (行政区划代码), GB/T 2260, checked against the vendored table in
  ``parties/data/regions.csv`` (provenance and limits in ``parties/data/README.md``).
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
from dataclasses import dataclass
from importlib import resources

# ---------------------------------------------------------------------------------------------
# Unified social credit code (GB 32100-2015)
# ---------------------------------------------------------------------------------------------

#: The 31 characters a credit code may use: digits and upper-case letters without I, O, S, V, Z.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {char: value for value, char in enumerate(USCC_CHARSET)}


def uscc_check_char(first17: str) -> str:
    """The check character (position 18) for the first 17 characters of a credit code."""
    if len(first17) != 17 or any(c not in _USCC_VALUE for c in first17):
        raise ValueError("uscc_check_char needs 17 characters from the credit-code character set")
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def make_uscc(first17: str) -> str:
    """The full 18-character credit code: ``first17`` plus its check character."""
    return first17 + uscc_check_char(first17)


def validate_uscc(code: str) -> list[str]:
    """Problems with a unified social credit code (empty when valid).

    Checks: 18 characters from :data:`USCC_CHARSET`; positions 3–8 are the six digits of an
    administrative division code (only their form is checked: the code of the registering
    authority may since have been retired); the check character matches.
    """
    problems: list[str] = []
    if len(code) != 18:
        problems.append(f"must be 18 characters (got {len(code)})")
    bad = [c for c in code if c not in _USCC_VALUE]
    if bad:
        shown = ", ".join(sorted({repr(c) for c in bad}))
        problems.append(f"contains a character not allowed (I, O, S, V, Z or lowercase): {shown}")
    region = code[2:8]
    if len(code) >= 8 and not (region.isascii() and region.isdigit()):
        problems.append(f"positions 3–8 must be a 6-digit administrative division code (got {region!r})")
    if not problems:
        expected = uscc_check_char(code[:17])
        if code[17] != expected:
            problems.append(f"check character should be {expected}")
    return problems


# ---------------------------------------------------------------------------------------------
# Administrative divisions (GB/T 2260)
# ---------------------------------------------------------------------------------------------

#: The 34 provincial-level divisions: code prefix → (Chinese name, English name).
PROVINCES: dict[str, tuple[str, str]] = {
    "11": ("北京市", "Beijing"),
    "12": ("天津市", "Tianjin"),
    "13": ("河北省", "Hebei"),
    "14": ("山西省", "Shanxi"),
    "15": ("内蒙古自治区", "Inner Mongolia"),
    "21": ("辽宁省", "Liaoning"),
    "22": ("吉林省", "Jilin"),
    "23": ("黑龙江省", "Heilongjiang"),
    "31": ("上海市", "Shanghai"),
    "32": ("江苏省", "Jiangsu"),
    "33": ("浙江省", "Zhejiang"),
    "34": ("安徽省", "Anhui"),
    "35": ("福建省", "Fujian"),
    "36": ("江西省", "Jiangxi"),
    "37": ("山东省", "Shandong"),
    "41": ("河南省", "Henan"),
    "42": ("湖北省", "Hubei"),
    "43": ("湖南省", "Hunan"),
    "44": ("广东省", "Guangdong"),
    "45": ("广西壮族自治区", "Guangxi"),
    "46": ("海南省", "Hainan"),
    "50": ("重庆市", "Chongqing"),
    "51": ("四川省", "Sichuan"),
    "52": ("贵州省", "Guizhou"),
    "53": ("云南省", "Yunnan"),
    "54": ("西藏自治区", "Xizang (Tibet)"),
    "61": ("陕西省", "Shaanxi"),
    "62": ("甘肃省", "Gansu"),
    "63": ("青海省", "Qinghai"),
    "64": ("宁夏回族自治区", "Ningxia"),
    "65": ("新疆维吾尔自治区", "Xinjiang"),
    "71": ("台湾省", "Taiwan"),
    "81": ("香港特别行政区", "Hong Kong"),
    "82": ("澳门特别行政区", "Macao"),
}


@functools.cache
def _regions() -> dict[str, str]:
    """The vendored GB/T 2260 table, code → Chinese name, read once on first use."""
    text = resources.files("yunrong.parties").joinpath("data/regions.csv").read_text(encoding="utf-8")
    return {row["code"]: row["name"] for row in csv.DictReader(io.StringIO(text))}


def validate_region(code: str) -> list[str]:
    """Problems with a six-digit administrative division code (empty when valid).

    A valid code has six ASCII digits, a known province prefix and is listed in the vendored
    table of current divisions (see ``parties/data/README.md``: units created after about 2022
    and retired codes are not listed).
    """
    if len(code) != 6 or not (code.isascii() and code.isdigit()):
        return [f"must be 6 digits (got {code!r})"]
    if code[:2] not in PROVINCES:
        return [f"unknown province code {code[:2]}"]
    if code not in _regions():
        return [f"unknown administrative division code {code}"]
    return []


def region_name(code: str) -> str | None:
    """The Chinese name of a division code from the vendored table, or None when unknown."""
    return _regions().get(code)


# ---------------------------------------------------------------------------------------------
# Citizen identity number (GB 11643-1999)
# ---------------------------------------------------------------------------------------------

RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK = "10X98765432"
#: Prefixes valid in an 18-character identity number besides :data:`PROVINCES`: 83 is used by the
#: residence permits of Taiwan residents (港澳台居民居住证), which follow GB 11643.
RESIDENCE_PERMIT_PREFIXES: dict[str, tuple[str, str]] = {"83": ("台湾居民居住证", "Taiwan residents' permit")}
_EARLIEST_BIRTH = datetime.date(1900, 1, 1)


def resident_id_check_char(first17: str) -> str:
    """The check character (0–9 or X) for the first 17 digits of an identity number."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError("resident_id_check_char needs 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    return _RESIDENT_ID_CHECK[total % 11]


def make_resident_id(first17: str) -> str:
    """The full 18-character identity number: ``first17`` plus its check character."""
    return first17 + resident_id_check_char(first17)


def birth_date_of(number: str) -> datetime.date:
    """The birth date encoded at positions 7–14 (YYYYMMDD); ValueError when it is no real date."""
    digits = number[6:14]
    if len(digits) != 8 or not (digits.isascii() and digits.isdigit()):
        raise ValueError("positions 7–14 must be a birth date YYYYMMDD")
    return datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def validate_resident_id(number: str, *, today: datetime.date) -> list[str]:
    """Problems with an 18-character citizen identity number (empty when valid).

    Checks: 17 digits and a check character 0–9 or X (upper case) that matches; a known
    province prefix (a :data:`PROVINCES` key, or 83 for Taiwan residents' permits); a real
    birth date at positions 7–14, not before 1900-01-01 and not after ``today``. The rest of
    the region part is not checked against the table, since retired codes stay valid in IDs.
    """
    if len(number) != 18:
        return [f"must be 18 characters (got {len(number)})"]
    problems: list[str] = []
    body, check = number[:17], number[17]
    body_ok = body.isascii() and body.isdigit()
    if not body_ok:
        problems.append("the first 17 characters must be digits")
    if check not in "0123456789X":
        problems.append("the last character must be a digit or X")
    prefix = number[:2]
    if prefix not in PROVINCES and prefix not in RESIDENCE_PERMIT_PREFIXES:
        problems.append(f"unknown province code {prefix}")
    try:
        born = birth_date_of(number)
    except ValueError:
        problems.append(f"positions 7–14 must be a real birth date YYYYMMDD (got {number[6:14]!r})")
    else:
        if born > today:
            problems.append(f"birth date {born.isoformat()} is in the future")
        elif born < _EARLIEST_BIRTH:
            problems.append(f"birth date {born.isoformat()} is before 1900-01-01")
    if body_ok and check in "0123456789X":
        expected = resident_id_check_char(body)
        if check != expected:
            problems.append(f"check character should be {expected}")
    return problems


# ---------------------------------------------------------------------------------------------
# Industry classification (GB/T 4754-2017)
# ---------------------------------------------------------------------------------------------

#: Sections (门类) A–T: letter → (Chinese name, English name).
INDUSTRY_SECTIONS: dict[str, tuple[str, str]] = {
    "A": ("农、林、牧、渔业", "Agriculture, forestry, animal husbandry and fishery"),
    "B": ("采矿业", "Mining"),
    "C": ("制造业", "Manufacturing"),
    "D": (
        "电力、热力、燃气及水生产和供应业",
        "Production and supply of electricity, heat, gas and water",
    ),
    "E": ("建筑业", "Construction"),
    "F": ("批发和零售业", "Wholesale and retail trade"),
    "G": ("交通运输、仓储和邮政业", "Transport, storage and postal services"),
    "H": ("住宿和餐饮业", "Accommodation and catering"),
    "I": (
        "信息传输、软件和信息技术服务业",
        "Information transmission, software and information technology services",
    ),
    "J": ("金融业", "Finance"),
    "K": ("房地产业", "Real estate"),
    "L": ("租赁和商务服务业", "Leasing and business services"),
    "M": ("科学研究和技术服务业", "Scientific research and technical services"),
    "N": (
        "水利、环境和公共设施管理业",
        "Water conservancy, environment and public facilities management",
    ),
    "O": ("居民服务、修理和其他服务业", "Resident services, repair and other services"),
    "P": ("教育", "Education"),
    "Q": ("卫生和社会工作", "Health and social work"),
    "R": ("文化、体育和娱乐业", "Culture, sports and entertainment"),
    "S": (
        "公共管理、社会保障和社会组织",
        "Public administration, social security and social organisations",
    ),
    "T": ("国际组织", "International organisations"),
}

#: Divisions (大类) 01–97: code → (section letter, Chinese name, English name).
INDUSTRY_DIVISIONS: dict[str, tuple[str, str, str]] = {
    "01": ("A", "农业", "Agriculture"),
    "02": ("A", "林业", "Forestry"),
    "03": ("A", "畜牧业", "Animal husbandry"),
    "04": ("A", "渔业", "Fishery"),
    "05": (
        "A",
        "农、林、牧、渔专业及辅助性活动",
        "Professional and support activities for agriculture, forestry, animal husbandry and fishery",
    ),
    "06": ("B", "煤炭开采和洗选业", "Mining and washing of coal"),
    "07": ("B", "石油和天然气开采业", "Extraction of petroleum and natural gas"),
    "08": ("B", "黑色金属矿采选业", "Mining and processing of ferrous metal ores"),
    "09": ("B", "有色金属矿采选业", "Mining and processing of non-ferrous metal ores"),
    "10": ("B", "非金属矿采选业", "Mining and processing of non-metallic minerals"),
    "11": ("B", "开采专业及辅助性活动", "Professional and support activities for mining"),
    "12": ("B", "其他采矿业", "Other mining"),
    "13": ("C", "农副食品加工业", "Processing of food from agricultural products"),
    "14": ("C", "食品制造业", "Manufacture of foods"),
    "15": ("C", "酒、饮料和精制茶制造业", "Manufacture of liquor, beverages and refined tea"),
    "16": ("C", "烟草制品业", "Manufacture of tobacco products"),
    "17": ("C", "纺织业", "Manufacture of textiles"),
    "18": ("C", "纺织服装、服饰业", "Manufacture of textile garments and apparel"),
    "19": (
        "C",
        "皮革、毛皮、羽毛及其制品和制鞋业",
        "Manufacture of leather, fur, feathers and related products, and footwear",
    ),
    "20": (
        "C",
        "木材加工和木、竹、藤、棕、草制品业",
        "Processing of timber; manufacture of wood, bamboo, rattan, palm and straw products",
    ),
    "21": ("C", "家具制造业", "Manufacture of furniture"),
    "22": ("C", "造纸和纸制品业", "Manufacture of paper and paper products"),
    "23": ("C", "印刷和记录媒介复制业", "Printing and reproduction of recording media"),
    "24": (
        "C",
        "文教、工美、体育和娱乐用品制造业",
        "Manufacture of articles for culture, education, arts and crafts, sport and entertainment",
    ),
    "25": ("C", "石油、煤炭及其他燃料加工业", "Processing of petroleum, coal and other fuels"),
    "26": ("C", "化学原料和化学制品制造业", "Manufacture of raw chemical materials and chemical products"),
    "27": ("C", "医药制造业", "Manufacture of medicines"),
    "28": ("C", "化学纤维制造业", "Manufacture of chemical fibres"),
    "29": ("C", "橡胶和塑料制品业", "Manufacture of rubber and plastic products"),
    "30": ("C", "非金属矿物制品业", "Manufacture of non-metallic mineral products"),
    "31": ("C", "黑色金属冶炼和压延加工业", "Smelting and pressing of ferrous metals"),
    "32": ("C", "有色金属冶炼和压延加工业", "Smelting and pressing of non-ferrous metals"),
    "33": ("C", "金属制品业", "Manufacture of metal products"),
    "34": ("C", "通用设备制造业", "Manufacture of general-purpose machinery"),
    "35": ("C", "专用设备制造业", "Manufacture of special-purpose machinery"),
    "36": ("C", "汽车制造业", "Manufacture of automobiles"),
    "37": (
        "C",
        "铁路、船舶、航空航天和其他运输设备制造业",
        "Manufacture of railway, ship, aerospace and other transport equipment",
    ),
    "38": ("C", "电气机械和器材制造业", "Manufacture of electrical machinery and apparatus"),
    "39": (
        "C",
        "计算机、通信和其他电子设备制造业",
        "Manufacture of computers, communication and other electronic equipment",
    ),
    "40": ("C", "仪器仪表制造业", "Manufacture of measuring instruments and meters"),
    "41": ("C", "其他制造业", "Other manufacturing"),
    "42": ("C", "废弃资源综合利用业", "Comprehensive utilisation of waste resources"),
    "43": ("C", "金属制品、机械和设备修理业", "Repair of metal products, machinery and equipment"),
    "44": ("D", "电力、热力生产和供应业", "Production and supply of electricity and heat"),
    "45": ("D", "燃气生产和供应业", "Production and supply of gas"),
    "46": ("D", "水的生产和供应业", "Production and supply of water"),
    "47": ("E", "房屋建筑业", "Construction of buildings"),
    "48": ("E", "土木工程建筑业", "Civil engineering"),
    "49": ("E", "建筑安装业", "Construction installation"),
    "50": ("E", "建筑装饰、装修和其他建筑业", "Building decoration, renovation and other construction"),
    "51": ("F", "批发业", "Wholesale trade"),
    "52": ("F", "零售业", "Retail trade"),
    "53": ("G", "铁路运输业", "Rail transport"),
    "54": ("G", "道路运输业", "Road transport"),
    "55": ("G", "水上运输业", "Water transport"),
    "56": ("G", "航空运输业", "Air transport"),
    "57": ("G", "管道运输业", "Pipeline transport"),
    "58": ("G", "多式联运和运输代理业", "Multimodal transport and transport agency"),
    "59": ("G", "装卸搬运和仓储业", "Loading, unloading and storage"),
    "60": ("G", "邮政业", "Postal services"),
    "61": ("H", "住宿业", "Accommodation"),
    "62": ("H", "餐饮业", "Catering"),
    "63": (
        "I",
        "电信、广播电视和卫星传输服务",
        "Telecommunications, radio and television, and satellite transmission services",
    ),
    "64": ("I", "互联网和相关服务", "Internet and related services"),
    "65": ("I", "软件和信息技术服务业", "Software and information technology services"),
    "66": ("J", "货币金融服务", "Monetary and financial services"),
    "67": ("J", "资本市场服务", "Capital market services"),
    "68": ("J", "保险业", "Insurance"),
    "69": ("J", "其他金融业", "Other financial services"),
    "70": ("K", "房地产业", "Real estate"),
    "71": ("L", "租赁业", "Leasing"),
    "72": ("L", "商务服务业", "Business services"),
    "73": ("M", "研究和试验发展", "Research and experimental development"),
    "74": ("M", "专业技术服务业", "Professional technical services"),
    "75": ("M", "科技推广和应用服务业", "Technology promotion and application services"),
    "76": ("N", "水利管理业", "Water conservancy management"),
    "77": ("N", "生态保护和环境治理业", "Ecological protection and environmental management"),
    "78": ("N", "公共设施管理业", "Public facilities management"),
    "79": ("N", "土地管理业", "Land management"),
    "80": ("O", "居民服务业", "Resident services"),
    "81": (
        "O",
        "机动车、电子产品和日用产品修理业",
        "Repair of motor vehicles, electronic products and household goods",
    ),
    "82": ("O", "其他服务业", "Other services"),
    "83": ("P", "教育", "Education"),
    "84": ("Q", "卫生", "Health"),
    "85": ("Q", "社会工作", "Social work"),
    "86": ("R", "新闻和出版业", "News and publishing"),
    "87": ("R", "广播、电视、电影和录音制作业", "Radio, television, film and sound recording"),
    "88": ("R", "文化艺术业", "Culture and arts"),
    "89": ("R", "体育", "Sports"),
    "90": ("R", "娱乐业", "Entertainment"),
    "91": ("S", "中国共产党机关", "Organs of the Communist Party of China"),
    "92": ("S", "国家机构", "State organs"),
    "93": ("S", "人民政协、民主党派", "CPPCC and democratic parties"),
    "94": ("S", "社会保障", "Social security"),
    "95": (
        "S",
        "群众团体、社会团体和其他成员组织",
        "Mass organisations, social groups and other membership organisations",
    ),
    "96": (
        "S",
        "基层群众自治组织及其他组织",
        "Grassroots mass self-governing organisations and other organisations",
    ),
    "97": ("T", "国际组织", "International organisations"),
}


def _industry_problem(section: str, digits: str) -> str | None:
    if section not in INDUSTRY_SECTIONS:
        return f"unknown industry section {section!r}: expected an upper-case letter A–T"
    if len(digits) not in (2, 3, 4) or not (digits.isascii() and digits.isdigit()):
        return f"industry code needs 2, 3 or 4 digits after the section letter (got {digits!r})"
    division = INDUSTRY_DIVISIONS.get(digits[:2])
    if division is None:
        return f"unknown industry division {digits[:2]}"
    if division[0] != section:
        return f"division {digits[:2]} belongs to section {division[0]}, not {section}"
    return None


@dataclass(frozen=True, slots=True)
class IndustryCode:
    """A GB/T 4754-2017 code: section letter plus 2 (division), 3 (group) or 4 (class) digits.

    Construction checks the section, the digit form and that the division belongs to the
    section. Groups and classes below the division are not checked against the standard's list.
    """

    section: str
    digits: str

    def __post_init__(self) -> None:
        problem = _industry_problem(self.section, self.digits)
        if problem is not None:
            raise ValueError(problem)

    @property
    def division(self) -> str:
        """The two-digit division (大类), e.g. ``"13"`` for C1311."""
        return self.digits[:2]

    @property
    def code(self) -> str:
        """The written code, e.g. ``"C1311"``."""
        return self.section + self.digits

    def __str__(self) -> str:
        return self.code


def parse_industry(code: str) -> IndustryCode:
    """Parse ``"C13"``, ``"C131"`` or ``"C1311"``; ValueError with the reason when malformed.

    Validation reaches the division level: the letter must be a section, the digits must
    start with a division of that section. No case folding: ``"c13"`` is refused.
    """
    if not code:
        raise ValueError("industry code is empty")
    return IndustryCode(code[0], code[1:])
