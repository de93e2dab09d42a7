"""How strong a password must be (SPEC §2): the one rule, enforced by manifests' validation, Pulumi's
check and the backend alike. A reason never quotes the password or a part of it.
"""

from __future__ import annotations

import re

MIN_LENGTH = 12

# Keyboard rows (QWERTY, QWERTZ, AZERTY) and the alphabet/digits: four neighbours in a row, either way.
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "qwertzuiop",
    "yxcvbnm",
    "azertyuiop",
    "qsdfghjklm",
    "wxcvbn",
    "1qaz2wsx3edc4rfv",
)
_RUN = 4


def _grams(sequences: tuple[str, ...], n: int) -> frozenset[str]:
    out: set[str] = set()
    for seq in sequences:
        for s in (seq, seq[::-1]):
            out.update(s[i : i + n] for i in range(len(s) - n + 1))
    return frozenset(out)


_SEQUENTIAL = _grams(_SEQUENCES, _RUN)
_REPEATED = re.compile(rf"(.)\1{{{_RUN - 1},}}", re.DOTALL)
_SHORT_PREFIX_DIGITS = re.compile(r"[A-Za-z]{0,4}[0-9]+[^A-Za-z0-9]{0,2}|[0-9]+[A-Za-z]{0,4}[^A-Za-z0-9]{0,2}")
_REPEATED_CHUNK = re.compile(r"(.+?)\1+", re.DOTALL)
_LEET = str.maketrans({"@": "a", "4": "a", "3": "e", "1": "i", "0": "o", "$": "s", "5": "s", "7": "t", "+": "t"})
_ENDS = re.compile(r"^[^a-z]+|[^a-z]+$")

# The most common passwords of public breach corpora (lower case). Short ones are refused by length
# anyway; they are here because "Password123!" or "Dragon2024!!" is the same password with decoration.
COMMON_PASSWORDS = frozenset(
    """
    123456 password 12345678 qwerty 123456789 12345 1234 111111 1234567 dragon 123123 baseball abc123
    football monkey letmein 696969 shadow master 666666 qwertyuiop 123321 mustang 1234567890 michael 654321
    superman 1qaz2wsx 7777777 121212 000000 qazwsx 123qwe killer trustno1 jordan jennifer zxcvbnm asdfgh
    hunter buster soccer harley batman andrew tigger sunshine iloveyou 2000 charlie robert thomas hockey
    ranger daniel starwars klaster 112233 george computer michelle jessica pepper 1111 zxcvbn 555555
    11111111 131313 freedom 777777 pass maggie 159753 aaaaaa ginger princess joshua cheese amanda summer
    love ashley nicole chelsea biteme matthew access yankees 987654321 dallas austin thunder taylor matrix
    mobilemail mom monitor monitoring montana moon moscow william corvette hello martin heather secret
    merlin diamond 1234qwer gfhjkm hammer silver 222222 88888888 anthony justin test bailey q1w2e3r4t5
    patrick internet scooter orange 11111 golfer cookie richard samantha bigdog guitar jackson whatever
    mickey chicken sparky snoopy maverick phoenix camaro peanut morgan welcome falcon cowboy ferrari
    samsung andrea smokey steelers joseph mercedes dakota arsenal eagles melissa boomer booboo spider
    nascar monster tigers yellow xxxxxx 123123123 gateway marina diablo bulldog qwer1234 compaq purple
    hardcore banana junior hannah 123654 porsche lakers iceman money cowboys 987654 london tennis 999999
    ncc1701 coffee scooby 0000 miller boston q1w2e3r4 brandon yamaha chester mother forever johnny edward
    333333 oliver redsox player nikita knight fender barney midnight please brandy chicago badboy slayer
    rangers charles angel flower rabbit wizard bigdick jasper enter rachel chris steven winner adidas
    victoria natasha 1q2w3e4r jasmine winter prince panties marine ghbdtn fishing cocacola casper james
    232323 raiders 888888 marlboro gandalf asdfasdf crystal 87654321 12344321 golden 8675309 222 abcd1234
    admin administrator root toor changeme default guest login passw0rd password1 password12 password123
    qwerty123 qwerty1 welcome1 letmein1 iloveyou1 princess1 monkey1 dragon1 football1 baseball1 abc12345
    test123 test1234 trustme secret1 master1 superuser user system manager office company business
    service support helpdesk tenancy tenant mailbox postmaster webmaster hostmaster info contact sales
    qazwsxedc zaq12wsx zaq1zaq1 1q2w3e4r5t 1qazxsw2 asdfghjkl asdf1234 azerty azerty123 qwertz
    qwertz123 hallo passwort schatz geheim sommer winter2020 summer2020 spring autumn january february
    march april august september october november december monday friday sunday weekend holiday
    football12 soccer12 liverpool chelsea1 manchester barcelona realmadrid juventus pokemon minecraft
    fortnite naruto starwars1 matrix1 jesus christ blessed angel1 heaven faith hope family children
    baby sweetheart lovely loveme lover beautiful butterfly flowers rainbow unicorn sunflower cherry
    strawberry chocolate cookie1 pizza hotdog hamburger beer whiskey vodka tequila party
    """.split()
)


def weakness(password: str) -> str | None:
    """Why `password` is weak, or None. The reason never quotes the password or a part of it."""
    lowered = password.lower()
    if len(password) < MIN_LENGTH:
        return f"it is shorter than {MIN_LENGTH} characters"
    if _is_common(lowered):
        return "it is a common password (or one with digits or symbols added), the first thing attackers try"
    if _REPEATED.search(password):
        return f"it repeats one character {_RUN} or more times in a row"
    if any(lowered[i : i + _RUN] in _SEQUENTIAL for i in range(len(lowered) - _RUN + 1)):
        return f"it contains {_RUN} or more consecutive characters (like abcd, 4321 or qwer)"
    if _SHORT_PREFIX_DIGITS.fullmatch(password):
        return "it is a simple pattern (a few letters and a run of digits)"
    if _REPEATED_CHUNK.fullmatch(password):
        return "it repeats the same short sequence"
    if len(set(password)) < 5:
        return "it uses fewer than 5 different characters"
    return None


def _is_common(lowered: str) -> bool:
    """A common password, as is, in leetspeak (p@ssw0rd), or decorated with leading/trailing digits and symbols."""
    candidates = {lowered, lowered.translate(_LEET)}
    for text in list(candidates):
        candidates.add(_ENDS.sub("", text))
    candidates.add(_ENDS.sub("", lowered).translate(_LEET))
    return any(c in COMMON_PASSWORDS for c in candidates if c)


__all__ = ["COMMON_PASSWORDS", "MIN_LENGTH", "weakness"]
