"""Where `make run`'s processes listen and where they call: one setting moves both."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.checkout.config import CheckoutSettings
from services.common.config import Settings, port_for, var_dir
from services.notifications.config import mail_settings


def test_the_urls_a_process_calls_follow_the_ports_it_was_given() -> None:
    env = {"CHECKOUT_PORT": "9101", "TRIALS_PORT": "9102", "NOTIFICATIONS_PORT": "9103",
           "LOCALSTRIPE_PORT": "9420"}
    settings = Settings.from_env("trials", env)
    assert settings.service_urls == {"checkout": "http://127.0.0.1:9101", "trials": "http://127.0.0.1:9102",
                                     "notifications": "http://127.0.0.1:9103"}
    assert CheckoutSettings.from_env("checkout", env).stripe_api_base == "http://127.0.0.1:9420"
    assert settings.stripe_js_url == "http://127.0.0.1:9420/js.stripe.com/v3/"


def test_port_offset_moves_every_port_and_every_url_with_it() -> None:
    env = {"PORT_OFFSET": "100"}
    assert [port_for(name, env) for name in ("checkout", "trials", "notifications", "experiments",
                                             "localstripe", "smtp")] == [8101, 8102, 8103, 8104, 8520, 8125]
    settings = CheckoutSettings.from_env("checkout", env)
    assert settings.service_urls["notifications"] == "http://127.0.0.1:8103"
    assert settings.stripe_api_base == "http://127.0.0.1:8520"
    assert mail_settings(env).smtp_port == 8125  # notifications send to the stack's own mail sink


def test_what_is_set_explicitly_wins() -> None:
    env = {"PORT_OFFSET": "100", "CHECKOUT_PORT": "9001", "TRIALS_URL": "http://trials:8002",
           "STRIPE_API_BASE": "http://stripe.test", "SMTP_PORT": "2525"}
    settings = CheckoutSettings.from_env("checkout", env)
    assert port_for("checkout", env) == 9001
    assert settings.service_urls == {"checkout": "http://127.0.0.1:9001", "trials": "http://trials:8002",
                                     "notifications": "http://127.0.0.1:8103"}
    assert settings.stripe_api_base == "http://stripe.test"
    assert mail_settings(env).smtp_port == 2525
    assert CheckoutSettings.from_env("checkout", {"STRIPE_API_BASE": ""}).stripe_api_base is None  # Stripe itself


@pytest.mark.parametrize(("env", "said"), [
    ({"CHECKOUT_PORT": "80a"}, "CHECKOUT_PORT must be a port number, not '80a'"),
    ({"PORT_OFFSET": "-5"}, "PORT_OFFSET must be a number, not '-5'"),
    ({"PORT_OFFSET": "60000"}, "the checkout port would be 68001"),
])
def test_a_port_setting_that_makes_no_sense_says_which(env: dict[str, str], said: str) -> None:
    with pytest.raises(ValueError, match=said):
        port_for("checkout", env)


def test_var_dir_holds_the_stack_databases(tmp_path: Path) -> None:
    env = {"VAR_DIR": str(tmp_path / "second")}
    assert var_dir(env) == tmp_path / "second"
    assert Settings.from_env("trials", env).database_url == f"sqlite:///{tmp_path / 'second' / 'trials.db'}"
    assert Settings.from_env("trials", {**env, "TRIALS_DATABASE_URL": "sqlite:///x.db"}).database_url == \
        "sqlite:///x.db"
