"""The enveloping XML signature of a DIP document.

What the BZSt expects, as the published DIP clients build it (XDEV bzst-dip-java-client
``signing/XmlSigner.java``; tyclipso dac7_reporter ``lib/Java/XmlSigner.java``, itself based on
the BZSt's own example): the DIP document inside ``ds:Object Id="object"`` of a ``ds:Signature``
(prefix ``ds``), one ``ds:Reference URI="#object"`` without transforms, digest SHA-256,
canonicalization inclusive C14N 1.0, signature method
``http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1`` (RSASSA-PSS, RFC 6931 §2.3.10), and a
``ds:KeyInfo/ds:X509Data`` with the certificate's subject name and the certificate.

Written with lxml's C14N and cryptography's PSS, not a signature library: signxml knows PSS
only as ``xmldsig-more#rsa-pss`` with explicit ``RSAPSSParams``, not the ``sha256-rsa-MGF1``
URI the BZSt names, and python-xmlsec needs the system's libxmlsec1 (1.3 or later for PSS) with a
libxml2 that matches lxml's. The parameters are those of the URI (RFC 6931 §2.3.10) and of Java's
``SHA256withRSAandMGF1``, which the published clients use: MGF1 with SHA-256, a salt of 32 bytes
(the digest's length), trailer field 1. :func:`verify_enveloping` checks our own signatures, and
the test suite's DIP server checks them again with a verifier of its own.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from reporting import safexml
from reporting.transmit.errors import SignatureError

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA256_RSA_MGF1 = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
OBJECT_ID = "object"
#: RFC 6931 §2.3.10: the salt is as long as the digest
SALT_LENGTH = 32


def _ds(tag: str) -> str:
    return f"{{{DS_NS}}}{tag}"


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=SALT_LENGTH)


def load_key(private_key_pem: str | bytes) -> rsa.RSAPrivateKey:
    data = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SignatureError("the DIP private key is not an unencrypted PEM private key (PKCS#8 or PKCS#1)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SignatureError("the DIP private key is not an RSA key (the BZSt registers RSA keys)")
    return key


def load_certificate(certificate_pem: str | bytes) -> x509.Certificate:
    data = certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise SignatureError("the DIP certificate is not a PEM X.509 certificate") from None


def _c14n(elem: etree._Element) -> bytes:
    """Inclusive C14N 1.0 without comments of ``elem`` in its document (the namespaces in scope
    included), as a same-document reference without transforms dereferences it."""
    return etree.tostring(elem, method="c14n", exclusive=False, with_comments=False)


def sign_enveloping(document: bytes, private_key_pem: str | bytes, certificate_pem: str | bytes) -> bytes:
    """``document`` (a DIP XML document) wrapped in an enveloping ``ds:Signature`` made with the
    key; the certificate must be the key's. Returns the signed document's bytes (UTF-8)."""
    key = load_key(private_key_pem)
    cert = load_certificate(certificate_pem)
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise SignatureError("the DIP certificate is not the private key's: register the pair in the BZSt portal")
    try:
        root = safexml.parse_bytes(document, "DIP document", utf8_only=False, huge_tree=True)
    except safexml.XmlFileError as exc:
        raise SignatureError(f"the DIP document cannot be signed: {exc}") from None
    nsmap = {"ds": DS_NS}
    sig = etree.Element(_ds("Signature"), nsmap=nsmap)
    signed_info = etree.SubElement(sig, _ds("SignedInfo"))
    etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=C14N)
    etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=SHA256_RSA_MGF1)
    ref = etree.SubElement(signed_info, _ds("Reference"), URI=f"#{OBJECT_ID}")
    etree.SubElement(ref, _ds("DigestMethod"), Algorithm=SHA256)
    digest_value = etree.SubElement(ref, _ds("DigestValue"))
    value = etree.SubElement(sig, _ds("SignatureValue"))
    key_info = etree.SubElement(sig, _ds("KeyInfo"))
    x509_data = etree.SubElement(key_info, _ds("X509Data"))
    etree.SubElement(x509_data, _ds("X509SubjectName")).text = cert.subject.rfc4514_string()
    etree.SubElement(x509_data, _ds("X509Certificate")).text = base64.b64encode(
        cert.public_bytes(serialization.Encoding.DER)
    ).decode()
    obj = etree.SubElement(sig, _ds("Object"), Id=OBJECT_ID)
    obj.append(root)
    digest_value.text = base64.b64encode(hashlib.sha256(_c14n(obj)).digest()).decode()
    value.text = base64.b64encode(key.sign(_c14n(signed_info), _pss(), hashes.SHA256())).decode()
    return etree.tostring(sig, xml_declaration=True, encoding="UTF-8")


def verify_enveloping(signed: bytes, *, certificate_pem: str | bytes | None = None) -> etree._Element:
    """Check an enveloping signature made by :func:`sign_enveloping` (its structure, digest and
    PSS signature value) against the certificate in its KeyInfo, or against ``certificate_pem``
    when given (then the KeyInfo's must be that one). Returns the signed document's root."""
    try:
        sig = safexml.parse_bytes(signed, "signed DIP document", utf8_only=False, huge_tree=True)
    except safexml.XmlFileError as exc:
        raise SignatureError(str(exc)) from None
    if sig.tag != _ds("Signature"):
        raise SignatureError(f"the root element is {etree.QName(sig).localname}, not ds:Signature")
    signed_info = sig.find(_ds("SignedInfo"))
    obj = sig.find(_ds("Object"))
    if signed_info is None or obj is None or obj.get("Id") != OBJECT_ID or len(obj) != 1:
        raise SignatureError(
            'an enveloping signature has ds:SignedInfo and one ds:Object Id="object" with the document'
        )
    c14n_method, sig_method = signed_info.find(_ds("CanonicalizationMethod")), signed_info.find(_ds("SignatureMethod"))
    algorithms = (
        c14n_method.get("Algorithm") if c14n_method is not None else None,
        sig_method.get("Algorithm") if sig_method is not None else None,
    )
    if algorithms != (C14N, SHA256_RSA_MGF1):
        raise SignatureError(
            f"canonicalization/signature method {algorithms}; expected inclusive C14N and sha256-rsa-MGF1"
        )
    refs = signed_info.findall(_ds("Reference"))
    if len(refs) != 1 or refs[0].get("URI") != f"#{OBJECT_ID}" or refs[0].find(_ds("Transforms")) is not None:
        raise SignatureError('the signature has one ds:Reference URI="#object" without transforms')
    method = refs[0].find(_ds("DigestMethod"))
    if method is None or method.get("Algorithm") != SHA256:
        raise SignatureError("the reference's digest method is not SHA-256")
    expected = base64.b64encode(hashlib.sha256(_c14n(obj)).digest()).decode()
    if (refs[0].findtext(_ds("DigestValue")) or "").strip() != expected:
        raise SignatureError("the digest of ds:Object does not match: the document was changed after signing")
    embedded = sig.findtext(f"{_ds('KeyInfo')}/{_ds('X509Data')}/{_ds('X509Certificate')}")
    if not embedded:
        raise SignatureError("ds:KeyInfo holds no X509Certificate")
    cert = x509.load_der_x509_certificate(base64.b64decode("".join(embedded.split())))
    if certificate_pem is not None and load_certificate(certificate_pem) != cert:
        raise SignatureError("the document was signed with another certificate than the registered one")
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise SignatureError("the certificate's key is not an RSA key")
    try:
        public.verify(
            base64.b64decode("".join((sig.findtext(_ds("SignatureValue")) or "").split())),
            _c14n(signed_info),
            _pss(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        raise SignatureError("the signature value does not verify with the certificate's key") from None
    return obj[0]
