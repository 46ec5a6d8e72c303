"""The web portals over HTTP: login, CSRF, one dashboard per role, refusals, languages, redirects."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from yunrong import migrate
from yunrong.app import create_app
from yunrong.config import Settings
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.demo.seed import DEMO_LOGINS, DEMO_PASSWORD, DemoLogin, seed_demo
from yunrong.deps import CSRF_COOKIE, LANG_COOKIE, SESSION_COOKIE
from yunrong.identity.model import PORTAL_BY_ORG_TYPE, Actor, Context, Portal
from yunrong.kit.clock import SystemClock
from yunrong.web import i18n
from yunrong.web.pages import safe_next

HTML = {"accept": "text/html"}
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("pages")
    url = f"sqlite:///{tmp / 'pages.db'}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, demo=True, mail_dir=tmp / "mail", upload_dir=tmp / "uploads")
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        seed_demo(session, ctx=Context(actor=Actor.system("test"), clock=SystemClock()), settings=settings)
    engine.dispose()
    return settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client
    app.state.engine.dispose()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def log_in(client: TestClient, login: DemoLogin, *, next: str = "") -> str:
    page = client.get("/login", headers=HTML)
    response = client.post(
        "/login",
        data={
            "email": login.email,
            "password": DEMO_PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": next,
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return response.headers["location"]


def portal_of(login: DemoLogin) -> Portal:
    return PORTAL_BY_ORG_TYPE[login.org_type]


# --- languages -----------------------------------------------------------------------------------


def test_login_page_in_english_by_default(client: TestClient) -> None:
    page = client.get("/login", headers=HTML)
    assert page.status_code == 200
    assert '<html lang="en"' in page.text
    assert "Log in" in page.text
    assert "/static/vendor/htmx-2.0.11.min.js" in page.text
    assert "/static/vendor/pico-2.1.1.min.css" in page.text
    assert "cdn" not in page.text.lower()
    assert page.cookies.get(CSRF_COOKIE)


@pytest.mark.parametrize("header", ["zh-CN,zh;q=0.9,en;q=0.8", "zh", "zh-Hans-CN", "en;q=0.5, zh-CN"])
def test_login_page_in_chinese_when_the_browser_prefers_it(client: TestClient, header: str) -> None:
    page = client.get("/login", headers={**HTML, "accept-language": header})
    assert '<html lang="zh-CN"' in page.text
    assert "登录" in page.text
    assert "电子邮箱" in page.text


def test_browser_preferring_english_gets_english(client: TestClient) -> None:
    page = client.get("/login", headers={**HTML, "accept-language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert '<html lang="en"' in page.text


def test_language_switch_sets_cookie_and_returns_to_the_page(client: TestClient) -> None:
    response = client.get("/lang/zh-CN", params={"next": "/login?next=%2Fbank"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fbank"
    assert client.cookies.get(LANG_COOKIE) == "zh-CN"
    page = client.get("/login", headers={**HTML, "accept-language": "en"})
    assert '<html lang="zh-CN"' in page.text  # the explicit choice beats the browser
    client.get("/lang/en", follow_redirects=False)
    page = client.get("/login", headers={**HTML, "accept-language": "zh-CN"})
    assert '<html lang="en"' in page.text


def test_unknown_language_is_refused(client: TestClient) -> None:
    response = client.get("/lang/fr", headers=HTML, follow_redirects=False)
    assert response.status_code == 404
    assert LANG_COOKIE not in response.cookies


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "http:/evil",
        "javascript:alert(1)",
        "evil",
    ],
)
def test_language_switch_refuses_open_redirects(client: TestClient, target: str) -> None:
    response = client.get("/lang/en", params={"next": target}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_language_switch_ignores_a_foreign_referer(client: TestClient) -> None:
    response = client.get(
        "/lang/en", headers={"referer": "https://evil.example/path"}, follow_redirects=False
    )
    assert response.headers["location"] == "/"
    same_site = client.get("/lang/en", headers={"referer": "http://testserver/login"}, follow_redirects=False)
    assert same_site.headers["location"] == "/login"


@pytest.mark.parametrize("value", ["https://evil.example", "//evil", "/\\evil", "/ok\r\nx", "", "relative"])
def test_safe_next_refuses_anything_but_a_local_path(value: str) -> None:
    assert safe_next(value) is None


def test_safe_next_keeps_local_paths() -> None:
    assert safe_next("/regulator/audit?after=5") == "/regulator/audit?after=5"


# --- login, CSRF, logout ----------------------------------------------------------------------------


def test_post_without_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login", headers=HTML)
    login = DEMO_LOGINS[0]
    response = client.post(
        "/login", data={"email": login.email, "password": DEMO_PASSWORD}, headers=HTML, follow_redirects=False
    )
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert SESSION_COOKIE not in response.cookies


def test_post_with_a_token_for_another_nonce_is_refused(client: TestClient) -> None:
    token = csrf_of(client.get("/login", headers=HTML).text)
    client.cookies.set(CSRF_COOKIE, "another-nonce")
    login = DEMO_LOGINS[0]
    response = client.post(
        "/login",
        data={"email": login.email, "password": DEMO_PASSWORD, "csrf_token": token},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_wrong_password_is_shown_in_the_form(client: TestClient) -> None:
    token = csrf_of(client.get("/login", headers=HTML).text)
    response = client.post(
        "/login",
        data={"email": "bank@demo.yunrong.cn", "password": "not-the-password", "csrf_token": token},
        headers=HTML,
    )
    assert 400 <= response.status_code < 500
    assert "wrong e-mail or password" in response.text
    assert 'value="bank@demo.yunrong.cn"' in response.text  # the e-mail is kept, the password is not
    assert "not-the-password" not in response.text


def test_wrong_password_in_chinese(client: TestClient) -> None:
    headers = {**HTML, "accept-language": "zh-CN"}
    token = csrf_of(client.get("/login", headers=headers).text)
    response = client.post(
        "/login",
        data={"email": "nobody@demo.yunrong.cn", "password": "x" * 12, "csrf_token": token},
        headers=headers,
    )
    assert 400 <= response.status_code < 500
    assert "电子邮箱或密码错误" in response.text


def test_empty_fields_are_flagged_beside_the_field(client: TestClient) -> None:
    token = csrf_of(client.get("/login", headers=HTML).text)
    response = client.post("/login", data={"csrf_token": token}, headers=HTML)
    assert response.status_code == 422
    assert 'id="email-error"' in response.text
    assert 'id="password-error"' in response.text


def test_pages_need_a_login(client: TestClient) -> None:
    response = client.get("/regulator/audit", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fregulator%2Faudit"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_login_returns_to_the_page_asked_for(client: TestClient) -> None:
    regulator = next(d for d in DEMO_LOGINS if d.email.startswith("regulator1"))
    assert log_in(client, regulator, next="/regulator/audit") == "/regulator/audit"


def test_login_refuses_an_open_redirect(client: TestClient) -> None:
    assert log_in(client, DEMO_LOGINS[0], next="https://evil.example/") == "/operator"


@pytest.mark.parametrize("login", DEMO_LOGINS, ids=lambda d: d.email)
def test_each_demo_login_reaches_its_own_dashboard_and_is_refused_the_others(
    client: TestClient, login: DemoLogin
) -> None:
    own = portal_of(login)
    assert log_in(client, login) == f"/{own.value}"
    page = client.get(f"/{own.value}", headers=HTML)
    assert page.status_code == 200
    assert login.name in page.text
    assert login.organisation in page.text
    assert client.get("/", follow_redirects=False).headers["location"] == f"/{own.value}"
    for other in Portal:
        if other is own:
            continue
        refused = client.get(f"/{other.value}", headers=HTML)
        assert refused.status_code == 403, other
        assert "Permission denied" in refused.text
        assert login.organisation not in refused.text.split("<main", 1)[1]  # nothing about others leaks
    account = client.get("/account", headers=HTML)
    assert account.status_code == 200
    assert login.email in account.text


def test_sub_pages_of_other_portals_are_refused(client: TestClient) -> None:
    log_in(client, next(d for d in DEMO_LOGINS if d.email.startswith("sme")))
    for path in ("/regulator/audit", "/operator/organisations", "/operator/outbox", "/audit/verify"):
        assert client.get(path, headers=HTML).status_code == 403, path


def test_refusal_page_in_chinese(client: TestClient) -> None:
    log_in(client, next(d for d in DEMO_LOGINS if d.email.startswith("bank")))
    refused = client.get("/regulator", headers={**HTML, "accept-language": "zh-CN"})
    assert refused.status_code == 403
    assert "无权访问" in refused.text


def test_logout_ends_the_session(client: TestClient) -> None:
    log_in(client, DEMO_LOGINS[-1])
    page = client.get("/bank", headers=HTML)
    assert page.status_code == 200
    old_session = client.cookies.get(SESSION_COOKIE)
    response = client.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.get("/bank", follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, old_session or "")  # the old cookie no longer works either
    assert client.get("/bank", follow_redirects=False).status_code == 303


def test_logout_needs_the_csrf_token(client: TestClient) -> None:
    log_in(client, DEMO_LOGINS[-1])
    response = client.post("/logout", headers=HTML, follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/bank", headers=HTML).status_code == 200


# --- regulator and operator pages -----------------------------------------------------------------


def test_regulator_reads_the_audit_log_and_verifies_the_chain(client: TestClient) -> None:
    log_in(client, next(d for d in DEMO_LOGINS if d.email.startswith("regulator2")))
    page = client.get("/regulator/audit", headers=HTML)
    assert page.status_code == 200
    assert "user.login" in page.text
    assert "organisation.create" in page.text
    filtered = client.get("/regulator/audit", params={"action": "user.create"}, headers=HTML)
    assert "user.create" in filtered.text
    assert "organisation.create" not in filtered.text
    assert client.get("/regulator/audit", params={"after": "x" * 40}, headers=HTML).status_code == 200
    fragment = client.get("/audit/verify", headers={**HTML, "hx-request": "true"})
    assert fragment.status_code == 200
    assert "Chain intact" in fragment.text
    assert "<html" not in fragment.text


def test_audit_log_pages_backwards(client: TestClient) -> None:
    log_in(client, next(d for d in DEMO_LOGINS if d.email.startswith("regulator1")))
    page = client.get("/regulator/audit", headers=HTML)
    older = re.search(r'href="/regulator/audit\?after=(\d+)"', page.text)
    assert older, "the seeded log has more than one page"
    second = client.get(f"/regulator/audit?after={older.group(1)}", headers=HTML)
    assert second.status_code == 200
    assert f'<td class="num">{int(older.group(1)) - 1}</td>' in second.text


def test_operator_dashboard_counts_and_outbox(client: TestClient) -> None:
    log_in(client, DEMO_LOGINS[0])
    dashboard = client.get("/operator", headers=HTML)
    assert "Users by organisation type" in dashboard.text
    assert "Pending" in dashboard.text
    outbox = client.get("/operator/outbox", params={"status": "dead"}, headers=HTML)
    assert outbox.status_code == 200


def test_operator_creates_an_organisation_and_sees_errors_beside_fields(client: TestClient) -> None:
    log_in(client, DEMO_LOGINS[0])
    page = client.get("/operator/organisations", headers=HTML)
    token = csrf_of(page.text)
    missing_kind = client.post(
        "/operator/organisations",
        data={"type": "investor", "name": "Wu Hao", "csrf_token": token},
        headers=HTML,
    )
    assert missing_kind.status_code == 422
    assert "required for investors" in missing_kind.text
    created = client.post(
        "/operator/organisations",
        data={"type": "enterprise", "name": "Danyang Optics Co. 丹阳光学", "csrf_token": token},
        follow_redirects=True,
        headers=HTML,
    )
    assert created.status_code == 200
    assert "Danyang Optics Co. 丹阳光学" in created.text
    assert re.search(r"Organisation ORG-\w+ created", created.text)
    duplicate = client.post(
        "/operator/organisations",
        data={"type": "enterprise", "name": "Danyang Optics Co. 丹阳光学", "csrf_token": token},
        headers=HTML,
    )
    assert duplicate.status_code == 422
    assert 'data-testid="name-error"' in duplicate.text


def test_api_keys_are_shown_once_and_can_be_revoked(client: TestClient) -> None:
    log_in(client, next(d for d in DEMO_LOGINS if d.email.startswith("agency")))
    page = client.get("/account", headers=HTML)
    created = client.post(
        "/account/api-keys", data={"name": "rating robot", "csrf_token": csrf_of(page.text)}
    )
    assert created.status_code == 201
    key = re.search(r'data-testid="new-key">(yrk_[^<]+)<', created.text)
    assert key
    me = client.get("/api/v1/me", headers={"x-api-key": key.group(1)})
    assert me.status_code == 200
    again = client.get("/account", headers=HTML)
    assert key.group(1) not in again.text
    key_id = re.search(r'action="/account/api-keys/([0-9a-f-]+)/revoke"', again.text)
    assert key_id
    revoked = client.post(
        f"/account/api-keys/{key_id.group(1)}/revoke",
        data={"csrf_token": csrf_of(again.text)},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    assert client.get("/api/v1/me", headers={"x-api-key": key.group(1)}).status_code == 401


def test_roles_without_api_keys_see_no_key_section(client: TestClient) -> None:
    log_in(client, next(d for d in DEMO_LOGINS if d.email.startswith("investor")))
    page = client.get("/account", headers=HTML)
    assert 'id="api-keys"' not in page.text
    refused = client.post(
        "/account/api-keys", data={"name": "x", "csrf_token": csrf_of(page.text)}, headers=HTML
    )
    assert refused.status_code == 403


def test_totp_enrolment_from_the_account_page(client: TestClient, settings: Settings) -> None:
    from yunrong.identity import security

    log_in(client, next(d for d in DEMO_LOGINS if d.email.startswith("institution")))
    page = client.get("/account", headers=HTML)
    secret = re.search(r'name="secret" value="([A-Z2-7]+)"', page.text)
    assert secret
    token = csrf_of(page.text)
    wrong = client.post(
        "/account/totp", data={"secret": secret.group(1), "code": "000000", "csrf_token": token}
    )
    assert wrong.status_code == 422
    assert 'data-testid="code-error"' in wrong.text
    code = security.totp_now(secret.group(1), SystemClock().now())
    ok = client.post("/account/totp", data={"secret": secret.group(1), "code": code, "csrf_token": token})
    assert ok.status_code == 200
    assert "Two-factor authentication is now on" in ok.text


def test_unknown_page_is_an_html_404_for_browsers(client: TestClient) -> None:
    response = client.get("/no-such-page", headers={**HTML, "accept-language": "zh-CN"})
    assert response.status_code == 404
    assert "未找到" in response.text


# --- catalogues ----------------------------------------------------------------------------------------


def test_every_message_has_a_chinese_translation() -> None:
    po = REPO_ROOT / "src/yunrong/web/translations/zh_CN/LC_MESSAGES/messages.po"
    with po.open("rb") as handle:
        catalog = read_po(handle, locale="zh_CN")
    untranslated = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []
    extracted = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            REPO_ROOT / "src/yunrong/web",
            method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
            options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}},
        )
    }
    missing = sorted(str(m) for m in extracted if str(m) not in catalog)
    assert missing == [], "run pybabel extract/update (see babel.cfg) and translate"


def test_no_compiled_catalogues_are_kept() -> None:
    assert not list((REPO_ROOT / "src/yunrong/web/translations").rglob("*.mo"))


def test_locale_choice() -> None:
    assert i18n.choose_locale(None, None) == "en"
    assert i18n.choose_locale(None, "fr-FR,de;q=0.8") == "en"
    assert i18n.choose_locale(None, "fr, zh-TW;q=0.5") == "zh_CN"
    assert i18n.choose_locale(None, "en;q=0.9, zh;q=0.95") == "zh_CN"
    assert i18n.choose_locale(None, "zh;q=0, en") == "en"
    assert i18n.choose_locale("en", "zh-CN") == "en"
    assert i18n.choose_locale("zh-CN", "en") == "zh_CN"
    assert i18n.choose_locale("klingon", "zh-CN") == "zh_CN"


def test_outside_demo_mode_supervisory_roles_need_two_factor(settings: Settings) -> None:
    strict = settings.model_copy(update={"demo": False})
    app = create_app(strict)
    with TestClient(app, base_url="http://testserver") as strict_client:
        token = csrf_of(strict_client.get("/login", headers=HTML).text)
        regulator = next(d for d in DEMO_LOGINS if d.email.startswith("regulator1"))
        response = strict_client.post(
            "/login",
            data={"email": regulator.email, "password": DEMO_PASSWORD, "csrf_token": token},
            headers=HTML,
            follow_redirects=False,
        )
        assert response.status_code == 400  # a form error: the page says what is missing
        assert 'id="totp-error"' in response.text
        assert SESSION_COOKIE not in response.cookies
    app.state.engine.dispose()
