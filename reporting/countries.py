"""Country and currency code lists (ISO 3166-1 alpha-2, ISO 4217) as the DPI schema accepts them."""

from __future__ import annotations

# ISO 3166-1 alpha-2 codes accepted by the DPI schema's CountryCode_Type (includes XK, X5 and XX).
ISO_COUNTRIES: frozenset[str] = frozenset(
    """
    AF AX AL DZ AS AD AO AI AQ AG AR AM AW AU AT AZ BS BH BD BB BY BE BZ BJ BM BT BO BQ BA BW BV
    BR IO BN BG BF BI KH CM CA CV KY CF TD CL CN CX CC CO KM CG CD CK CR CI HR CU CW CY CZ DK DJ
    DM DO EC EG SV GQ ER EE ET FK FO FJ FI FR GF PF TF GA GM GE DE GH GI GR GL GD GP GU GT GG GN
    GW GY HT HM VA HN HK HU IS IN ID IR IQ IE IM IL IT JM JP JE JO KZ KE KI KP KR KW KG LA LV LB
    LS LR LY LI LT LU MO MK MG MW MY MV ML MT MH MQ MR MU YT MX FM MD MC MN ME MS MA MZ MM NA NR
    NP NL NC NZ NI NE NG NU NF MP NO OM PK PW PS PA PG PY PE PH PN PL PT PR QA RE RO RU RW BL SH
    KN LC MF PM VC WS SM ST SA SN RS SC SL SG SX SK SI SB SO ZA GS SS ES LK SD SR SJ SZ SE CH SY
    TW TJ TZ TH TL TG TK TO TT TN TR TM TC TV UG UA AE GB US UM UY UZ VU VE VN VG VI WF EH YE ZM
    ZW XK X5 XX
    """.split()
)

# The 27 EU member states (MSCountryCode_Type). Greece is GR in ISO 3166, not EL.
EU_MEMBER_STATES: frozenset[str] = frozenset(
    "AT BE BG CY CZ DK EE FI FR DE GR HU HR IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()
)

# ISO 4217 codes accepted by the DPI schema's currCode_Type.
ISO_CURRENCIES: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BYR BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD
    IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LTL LVL LYD MAD
    MDL MGA MKD MMK MNT MOP MRO MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLL SOS SRD SSP STD
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN USS UYI UYU UYW UZS VEF
    VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XDR XFU XOF XPD XPF XPT XSU XUA XXX YER ZAR
    ZMW ZWL
    """.split()
)

# ISO 4217 minor-unit exponents that differ from 2. Codes without a minor unit (metals, XXX ...)
# are not payment currencies; they are rejected by :func:`minor_unit_exponent`.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "BIF BYR CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}
_NO_MINOR_UNIT = frozenset("XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XUA XXX XFU".split())


def is_country(code: object) -> bool:
    return isinstance(code, str) and code in ISO_COUNTRIES


def is_eu(code: object) -> bool:
    return isinstance(code, str) and code in EU_MEMBER_STATES


def is_currency(code: object) -> bool:
    return isinstance(code, str) and code in ISO_CURRENCIES and code not in _NO_MINOR_UNIT


def minor_unit_exponent(currency: str) -> int:
    """Number of decimal places of the currency's ISO 4217 minor unit (EUR: 2, JPY: 0, KWD: 3)."""
    if not is_currency(currency):
        raise ValueError(f"{currency!r} is not an ISO 4217 payment currency")
    return _EXPONENTS.get(currency, 2)
