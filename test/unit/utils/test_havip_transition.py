"""_utils/havip_transition.py: a reported transition's checks, the
minion's confirmation, the rate limit's file, the log."""

import havip_transition
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

NOW = 1_764_670_000.0


@pytest.mark.parametrize("at", [NOW, NOW - 300, NOW + 300, int(NOW)])
def test_a_finite_time_near_the_masters_clock_is_accepted(at):
    assert havip_transition.problem("svr1", "VI_1", "MASTER", "BACKUP", at, NOW) is None


@pytest.mark.parametrize("at", [float("nan"), float("inf"), float("-inf"), True, False, "1.5", None, NOW + 300.5])
def test_any_other_time_is_refused(at):
    assert havip_transition.problem("svr1", "VI_1", "MASTER", "BACKUP", at, NOW).startswith(f"at {at!r} refused")


NONCE = bytes(range(32))


def proven(answer, nonce=NONCE):
    """``answer`` with the proof the minion makes of its VIPs."""
    return {**answer, "proof": havip_transition.proof(nonce, answer["vips"])}


@pytest.mark.parametrize("answer", [None, "MASTER", {"vips": []}, proven({"vips": {"VI_1": "MASTER"}}),
                                    proven({"vips": {"VI_1": {"state": "MASTER", "since_s": True}}}),
                                    proven({"vips": {"VI_1": {"state": "MASTER", "since_s": float("nan")}}}),
                                    proven({"vips": {"VI_1": {"state": "MASTER", "since_s": NOW + 2}}}),
                                    proven({"vips": {"VI_1": {"state": "MASTER", "since_s": NOW - 11}}}),
                                    proven({"vips": {"VI_1": {"state": "STOPPED", "since_s": NOW}}})])
def test_an_answer_that_does_not_say_so_does_not_confirm(answer):
    assert havip_transition.unconfirmed(answer, "VI_1", "MASTER", NOW, NONCE) is not None


def test_the_state_recorded_before_the_handover_confirms():
    answer = proven({"vips": {"VI_1": {"state": "MASTER", "since_s": NOW - 3}}})
    assert havip_transition.unconfirmed(answer, "VI_1", "MASTER", NOW, NONCE) is None


@pytest.mark.parametrize("proof", [None, "", 7, havip_transition.proof(bytes(32), {"VI_1": {"state": "MASTER",
                                                                                           "since_s": NOW}})])
def test_an_answer_without_the_proof_of_the_nonce_does_not_confirm(proof):
    answer = {"vips": {"VI_1": {"state": "MASTER", "since_s": NOW}}, "proof": proof}
    assert havip_transition.unconfirmed(answer, "VI_1", "MASTER", NOW, NONCE) == (
        "its answer is not proven by the key the master accepted for it")


@pytest.mark.parametrize("vips", [{1: {"state": "MASTER"}, "VI_1": {"state": "MASTER", "since_s": NOW}},
                                  {"VI_1": {"state": "MASTER", "since_s": NOW, "x": 1}, "VI_2": {"state": b"MASTER"}}])
def test_an_answer_that_cannot_be_proven_does_not_confirm(vips):
    answer = {"vips": vips, "proof": "é"}
    assert havip_transition.unconfirmed(answer, "VI_1", "MASTER", NOW, NONCE) == (
        "its answer is not proven by the key the master accepted for it")


def test_a_proof_covers_every_vips_state_and_time():
    vips = {"VI_1": {"state": "MASTER", "since_s": NOW}, "VI_2": {"state": "BACKUP", "since_s": NOW - 1}}
    made = havip_transition.proof(NONCE, vips)
    assert made == havip_transition.proof(NONCE, {**vips, "VI_1": {**vips["VI_1"], "held": True}})
    assert made != havip_transition.proof(NONCE, {**vips, "VI_2": {"state": "MASTER", "since_s": NOW - 1}})
    assert made != havip_transition.proof(NONCE, {**vips, "VI_2": {"state": "BACKUP", "since_s": NOW}})


@pytest.fixture(scope="module")
def key():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()),
            private.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


def test_only_the_minions_private_key_opens_the_sealed_nonce(key):
    private, public = key
    nonce, sealed = havip_transition.challenge(public)
    assert len(nonce) == 32 and havip_transition.unseal(private, sealed) == nonce
    assert havip_transition.challenge(public)[0] != nonce
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    with pytest.raises(ValueError):
        havip_transition.unseal(other, sealed)


@pytest.mark.parametrize("sealed", ["not base64!", "", None, "QUJD"])
def test_what_is_not_a_sealed_nonce_is_refused(key, sealed):
    with pytest.raises(ValueError):
        havip_transition.unseal(key[0], sealed)


def test_the_rate_limit_counts_per_minion_and_forgets_after_its_window(tmp_path):
    path = str(tmp_path / "havip" / "transitions.json")
    assert [havip_transition.admit(path, "svr1", NOW, limit=2) for _ in range(3)] == [True, True, False]
    assert havip_transition.admit(path, "svr2", NOW, limit=2) is True
    assert havip_transition.admit(path, "svr1", NOW + 60, limit=2) is True


def test_a_damaged_count_is_started_over(tmp_path):
    path = tmp_path / "transitions.json"
    path.write_text("{not json")
    assert havip_transition.admit(str(path), "svr1", NOW) is True


def opts_with_key(tmp_path, minion, public):
    """A master's options whose pki_dir accepted ``public`` for ``minion``."""
    (tmp_path / "pki" / "minions").mkdir(parents=True)
    (tmp_path / "pki" / "minions" / minion).write_bytes(public)
    return {"pki_dir": str(tmp_path / "pki"), "cachedir": str(tmp_path / "cache")}


def test_a_transition_is_admitted_once_the_minion_proves_it_with_its_key(key, tmp_path):
    opts = opts_with_key(tmp_path, "svr1", key[1])

    def ask(sealed):
        nonce = havip_transition.unseal(key[0], sealed)
        return proven({"vips": {"VI_1": {"state": "MASTER", "since_s": NOW}}}, nonce)
    assert havip_transition.refusal(opts, ask, "svr1", "VI_1", "MASTER", "BACKUP", NOW, NOW) is None
    assert havip_transition.refusal(opts, lambda sealed: None, "svr1", "VI_1", "MASTER", "BACKUP", NOW, NOW) == (
        f"svr1 does not confirm VI_1 MASTER at {NOW}: it did not answer havip.status")


def test_a_transition_of_a_minion_without_an_accepted_key_is_refused_asking_nothing(key, tmp_path):
    opts = opts_with_key(tmp_path, "svr1", key[1])
    refused = havip_transition.refusal(opts, pytest.fail, "web7", "VI_1", "MASTER", "BACKUP", NOW, NOW)
    assert refused.startswith("web7 refused: no key accepted for it (")


def test_the_log_gets_one_line_per_transition_in_the_masters_option(tmp_path):
    opts = {"havip_vrrp_log": str(tmp_path / "vrrp.log")}
    assert havip_transition.log(opts, "svr1", "VI_1", "MASTER", "BACKUP", NOW) == (
        str(tmp_path / "vrrp.log"), f"{NOW} svr1 VI_1 BACKUP -> MASTER")
    havip_transition.log(opts, "svr2", "VI_1", "BACKUP", "MASTER", NOW + 1)
    assert (tmp_path / "vrrp.log").read_text() == (f"{NOW} svr1 VI_1 BACKUP -> MASTER\n"
                                                   f"{NOW + 1} svr2 VI_1 MASTER -> BACKUP\n")
