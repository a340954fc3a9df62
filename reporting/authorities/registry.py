"""The national profiles, keyed by member state: the one table that names them.

It imports the profile modules and nothing else of ours, and no profile imports it or the
package: finding a profile has no import side effect and no import cycle. Adding the next member
state is one module (a subclass of :class:`~reporting.authorities.eu.EuProfile`) and one line here.
"""

from __future__ import annotations

from reporting.authorities.base import AuthorityProfile
from reporting.authorities.de import DE
from reporting.authorities.fr import FR
from reporting.authorities.gb import GB
from reporting.authorities.hu import HU
from reporting.authorities.it import IT

#: National profiles by member state, and the profiles of the jurisdictions outside the EU that an
#: operator may file in (GB: the OECD Model Rules); a member state without an entry uses the EU
#: generic edition.
NATIONAL: dict[str, AuthorityProfile] = {"DE": DE, "FR": FR, "GB": GB, "HU": HU, "IT": IT}
