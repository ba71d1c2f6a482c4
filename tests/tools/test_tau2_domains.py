"""The built-in tau2_retail and tau2_airline domains (tau2-bench's retail and airline, in YAML v2):
the oracle solves their tasks, the noisy oracle follows (1-p)^L, hand-computed results of the
tricky tools, tau2-shaped records load unchanged, and the retail port stays small."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from scipy.stats import binomtest

from toolzoo.agents.scripted import NoisyOracleAgent, OracleAgent
from toolzoo.envs.taskgen import GeneratorOptions, TaskGenerator
from toolzoo.tools.loader import load_domain
from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.state import seed_state
from toolzoo.tools.zoo import ZOO_DIR, get_domain

from tests.envs.helpers import play

TAU2 = ["tau2_retail", "tau2_airline"]


# Each seed leaves a few orders / reservations out; these seeds hold every record the
# hand-computed tests below use.
SEEDS = {"tau2_retail": 3, "tau2_airline": 0}


def runtime(name: str) -> DomainRuntime:
    d = get_domain(name)
    return DomainRuntime(d, seed_state(d.spec, SEEDS[name]))


def call(rt: DomainRuntime, tool: str, **args):
    result = rt.call_sync(tool, args)
    assert not result.is_error, result.content
    return result.structured


def error(rt: DomainRuntime, tool: str, **args) -> str:
    before = rt.state.hash()
    result = rt.call_sync(tool, args)
    assert result.is_error and rt.state.hash() == before  # a refused call writes nothing
    return result.content


@pytest.mark.parametrize("name", TAU2)
def test_oracle_solves_lengths_1_to_8(name):
    failures = []
    for chain in (False, True):
        gen = TaskGenerator(get_domain(name), GeneratorOptions(chain=chain))
        for length in range(1, 9):
            for seed in range(3):
                task = gen.generate(seed, length)
                traj = play(task, OracleAgent())
                if not traj.outcome.success or traj.final_hash != task.expected_final_hash:
                    failures.append((task.id, chain, traj.outcome.reason))
    assert not failures, failures[:5]


def test_noisy_oracle_matches_geometric():
    p, length, n = 0.2, 3, 120
    successes = 0
    for i in range(n):
        task = TaskGenerator(get_domain(TAU2[i % 2])).generate(500 + i, length)
        agent = NoisyOracleAgent(p, seed=f"tau2:{i}")
        traj = play(task, agent)
        successes += traj.outcome.success
        assert traj.outcome.first_failed == (agent.failed[0] if agent.failed else None)
    ci = binomtest(successes, n).proportion_ci(confidence_level=0.999)
    assert ci.low <= (1 - p) ** length <= ci.high, successes / n


# -- retail: hand-computed results on data/tau2_retail_db.json ---------------------------------

def test_cancel_refunds_gift_card_immediately():
    rt = runtime("tau2_retail")
    # #W8121529 (fatima_kovacs_9105) was paid 436.41 with gift_card_8240879, whose balance is 150.0.
    order = call(rt, "cancel_pending_order", order_id="#W8121529", reason="ordered by mistake")
    assert order["status"] == "cancelled" and order["cancel_reason"] == "ordered by mistake"
    assert order["payment_history"][1] == {"transaction_type": "refund", "amount": 436.41,
                                           "payment_method_id": "gift_card_8240879"}
    user = call(rt, "get_user_details", user_id="fatima_kovacs_9105")
    assert user["payment_methods"]["gift_card_8240879"]["balance"] == 586.41  # 150.0 + 436.41
    assert error(rt, "cancel_pending_order", order_id="#W8121529", reason="ordered by mistake").endswith(
        "Non-pending order cannot be cancelled")
    assert error(rt, "cancel_pending_order", order_id="#W7707211", reason="too slow").endswith("Invalid reason")


def test_modify_two_items_settles_the_price_difference():
    rt = runtime("tau2_retail")
    # #W7707211 (ivan_ito_7769): Desk Lamp 1579431034 (130.16) -> 7338124446 (152.66): +22.50;
    # Sunglasses 3948277343 (265.44) -> 7722337887 (261.14): -4.30. Difference 18.20, paid by
    # gift_card_7419857 (balance 240.0 -> 221.80).
    order = call(rt, "modify_pending_order_items", order_id="#W7707211", item_ids=["1579431034", "3948277343"],
                 new_item_ids=["7338124446", "7722337887"], payment_method_id="gift_card_7419857")
    assert order["status"] == "pending (item modified)"
    assert [(i["item_id"], i["price"]) for i in order["items"]] == [
        ("7338124446", 152.66), ("7722337887", 261.14), ("3329206512", 316.08)]
    assert order["items"][0]["options"] == {"color": "silver", "brightness": "low"}
    assert order["items"][1]["options"] == {"frame color": "black", "lens type": "polarized"}
    assert order["payment_history"][-1] == {"transaction_type": "payment", "amount": 18.2,
                                            "payment_method_id": "gift_card_7419857"}
    balance = call(rt, "get_user_details", user_id="ivan_ito_7769")["payment_methods"]["gift_card_7419857"]["balance"]
    assert balance == 221.8
    # Called once per order: the status is no longer 'pending'.
    assert error(rt, "modify_pending_order_items", order_id="#W7707211", item_ids=["7338124446"],
                 new_item_ids=["1273174449"], payment_method_id="gift_card_7419857").endswith(
        "Non-pending order cannot be modified")


def test_modify_items_errors_follow_tau2():
    rt = runtime("tau2_retail")
    args = {"order_id": "#W7707211", "payment_method_id": "gift_card_7419857"}
    assert error(rt, "modify_pending_order_items", item_ids=["1579431034"], new_item_ids=["1579431034"],
                 **args).endswith("The new item id should be different from the old item id")
    assert error(rt, "modify_pending_order_items", item_ids=["1579431034", "1579431034"],
                 new_item_ids=["1273174449", "1273174449"], **args).endswith("1579431034 not found")
    assert error(rt, "modify_pending_order_items", item_ids=["1579431034"], new_item_ids=["9999"],
                 **args).endswith("Variant not found")
    # Speaker 3329206512 (316.08) -> 3864486658 (327.16): +11.08 fits the 240.0 gift card, and a
    # paypal id the user does not hold is refused.
    assert error(rt, "modify_pending_order_items", item_ids=["3329206512"], new_item_ids=["3864486658"],
                 order_id="#W7707211", payment_method_id="paypal_0").endswith("Payment method not found")


def test_exchange_records_the_requested_items_and_difference():
    rt = runtime("tau2_retail")
    # #W6130302 (delivered): Backpack 3079781466 (188.15) -> 5121578710 (200.42): +12.27; Water
    # Bottle 8037515532 (47.99) -> 9939929736 (53.70): +5.71. Difference 17.98.
    order = call(rt, "exchange_delivered_order_items", order_id="#W6130302", item_ids=["8037515532", "3079781466"],
                 new_item_ids=["9939929736", "5121578710"], payment_method_id="gift_card_5777501")
    assert order["status"] == "exchange requested"
    assert order["exchange_items"] == ["3079781466", "8037515532"]  # sorted, as tau2 stores them
    assert order["exchange_new_items"] == ["5121578710", "9939929736"]
    assert order["exchange_price_difference"] == 17.98
    assert order["exchange_payment_method_id"] == "gift_card_5777501"
    assert [i["item_id"] for i in order["items"]] == ["3079781466", "8037515532"]  # items change on arrival
    # The Backpack variant 8823635913 is not available.
    rt2 = runtime("tau2_retail")
    assert error(rt2, "exchange_delivered_order_items", order_id="#W6130302", item_ids=["3079781466"],
                 new_item_ids=["8823635913"], payment_method_id="gift_card_5777501").endswith(
        "New item 8823635913 not found or available")


def test_payment_change_moves_the_charge_to_a_gift_card():
    rt = runtime("tau2_retail")
    # #W1663871 (sofia_brown_6096): 269.76 on credit_card_9028369 moves to gift_card_4420938 (500.0).
    order = call(rt, "modify_pending_order_payment", order_id="#W1663871", payment_method_id="gift_card_4420938")
    assert order["status"] == "pending"
    assert order["payment_history"] == [
        {"transaction_type": "payment", "amount": 269.76, "payment_method_id": "credit_card_9028369"},
        {"transaction_type": "payment", "amount": 269.76, "payment_method_id": "gift_card_4420938"},
        {"transaction_type": "refund", "amount": 269.76, "payment_method_id": "credit_card_9028369"}]
    user = call(rt, "get_user_details", user_id="sofia_brown_6096")
    assert user["payment_methods"]["gift_card_4420938"]["balance"] == 230.24  # 500.0 - 269.76
    assert error(rt, "modify_pending_order_payment", order_id="#W1663871",
                 payment_method_id="gift_card_4420938").endswith("There should be exactly one payment for a pending order")


def test_retail_reads_and_calculate():
    rt = runtime("tau2_retail")
    assert call(rt, "calculate", expression="(130.16 + 265.44) / 2") == "197.8"  # tau2: str(round(x, 2))
    assert call(rt, "calculate", expression="2 ** 10") == "1024.0"  # Python's eval, as in tau2
    assert error(rt, "calculate", expression="2 + x").endswith("Invalid characters in expression")
    assert call(rt, "find_user_id_by_email", email="Ivan.Ito9242@example.com") == "ivan_ito_7769"  # case-insensitive
    assert call(rt, "find_user_id_by_name_zip", first_name="ivan", last_name="Ito", zip="95132") == "ivan_ito_7769"
    assert error(rt, "find_user_id_by_name_zip", first_name="Ivan", last_name="Ito", zip="95133").endswith("User not found")
    types = json.loads(call(rt, "list_all_product_types"))
    assert list(types) == sorted(types) and types["Desk Lamp"] == "7351586871"
    assert call(rt, "get_item_details", item_id="7338124446")["price"] == 152.66
    assert error(rt, "get_item_details", item_id="0").endswith("Item not found")


# -- airline: a booking with a certificate -----------------------------------------------------

def test_booking_decrements_seats_and_spends_the_certificate():
    rt = runtime("tau2_airline")
    pax = [{"first_name": "Liam", "last_name": "Khan", "dob": "1978-07-09"},
           {"first_name": "Ava", "last_name": "Khan", "dob": "1990-02-16"}]
    args = dict(user_id="liam_khan_2795", origin="SFO", destination="ORD", flight_type="one_way", cabin="economy",
                flights=[{"flight_number": "HAT001", "date": "2024-05-16"}], passengers=pax,
                total_baggages=3, nonfree_baggages=1, insurance="yes")
    # HAT001 on 2024-05-16: economy 125, 16 seats. 2 x 125 + 2 x 30 insurance + 1 x 50 bag = 360.
    msg = error(rt, "book_reservation", payment_methods=[{"payment_id": "certificate_4325149", "amount": 150},
                                                         {"payment_id": "credit_card_2626741", "amount": 200}], **args)
    assert msg.endswith("Payment amount does not add up, total price is 360, but paid 350")
    res = call(rt, "book_reservation", payment_methods=[{"payment_id": "certificate_4325149", "amount": 150},
                                                        {"payment_id": "credit_card_2626741", "amount": 210}], **args)
    assert res["reservation_id"] == "HATHAT" and res["created_at"] == "2024-05-15T15:00:00"
    assert res["flights"] == [{"flight_number": "HAT001", "origin": "SFO", "destination": "ORD",
                               "date": "2024-05-16", "price": 125}]
    assert res["payment_history"] == [{"payment_id": "certificate_4325149", "amount": 150},
                                      {"payment_id": "credit_card_2626741", "amount": 210}]
    flight = rt.state.data["flights"]["HAT001"]["dates"]["2024-05-16"]
    assert flight["available_seats"] == {"basic_economy": 17, "economy": 14, "business": 17}
    user = call(rt, "get_user_details", user_id="liam_khan_2795")
    assert "certificate_4325149" not in user["payment_methods"]  # a certificate is spent whole
    assert user["reservations"] == ["LSB1ND", "LKBT3B", "HATHAT"]
    cancelled = call(rt, "cancel_reservation", reservation_id="HATHAT")
    assert cancelled["status"] == "cancelled" and [p["amount"] for p in cancelled["payment_history"]] == [150, 210, -150, -210]


def test_airline_updates_follow_tau2():
    rt = runtime("tau2_airline")
    r = rt.state.data["reservations"]["LSB1ND"]
    assert error(rt, "update_reservation_baggages", reservation_id="LSB1ND", total_baggages=5,
                 nonfree_baggages=r["nonfree_baggages"] + 1, payment_id="certificate_4325149").endswith(
        "Certificate cannot be used to update reservation")
    out = call(rt, "send_certificate", user_id="liam_khan_2795", amount=100)
    assert out == "Certificate certificate_3221322 added to user liam_khan_2795 with amount 100."
    assert call(rt, "get_flight_status", flight_number="HAT001", date="2024-05-15") == "flying"
    assert error(rt, "get_flight_status", flight_number="HAT001", date="2024-06-01").endswith(
        "Flight HAT001 not found on date 2024-06-01")
    # ORD -> JFK on 2024-05-16: HAT004 (ORD-SFO, 15:00-17:00) then HAT005 (SFO-JFK, leaves 18:00);
    # HAT002 flies ORD-JFK direct, so it is no first leg.
    pairs = call(rt, "search_onestop_flight", origin="ORD", destination="JFK", date="2024-05-16")
    assert [(a["flight_number"], b["flight_number"], a["date"], b["date"]) for a, b in pairs] == [
        ("HAT004", "HAT005", "2024-05-16", "2024-05-16")]
    assert [f["flight_number"] for f in call(rt, "search_direct_flight", origin="ORD", destination="JFK",
                                              date="2024-05-16")] == ["HAT002"]


# -- tau2's own record layout loads unchanged --------------------------------------------------

# Records as they appear in tau2-bench's data/tau2/domains/retail/db.json (MIT License, Sierra
# Research): one product, one user and one order, verbatim.
TAU2_RETAIL_EXCERPT = {
    "products": {"6938111410": {"name": "Running Shoes", "product_id": "6938111410", "variants": {
        "4153505238": {"item_id": "4153505238", "options": {"size": "8", "color": "red", "material": "leather", "sole": "EVA"},
                       "available": True, "price": 158.67},
        "1775591963": {"item_id": "1775591963", "options": {"size": "10", "color": "white", "material": "leather", "sole": "EVA"},
                       "available": True, "price": 154.75},
        "9635758562": {"item_id": "9635758562", "options": {"size": "9", "color": "white", "material": "mesh", "sole": "rubber"},
                       "available": True, "price": 148.95},
        "9791469541": {"item_id": "9791469541", "options": {"size": "9", "color": "yellow", "material": "synthetic", "sole": "rubber"},
                       "available": True, "price": 147.05},
        "4107812777": {"item_id": "4107812777", "options": {"size": "9", "color": "black", "material": "synthetic", "sole": "rubber"},
                       "available": True, "price": 155.33}}}},
    "users": {"juan_anderson_5671": {
        "user_id": "juan_anderson_5671", "name": {"first_name": "Juan", "last_name": "Anderson"},
        "address": {"address1": "399 Oak Street", "address2": "Suite 551", "city": "Jacksonville", "country": "USA",
                    "state": "FL", "zip": "32234"},
        "email": "juan.anderson5522@example.com",
        "payment_methods": {"paypal_6388408": {"source": "paypal", "id": "paypal_6388408"}}, "orders": []}},
    "orders": {"#W6378322": {
        "order_id": "#W6378322", "user_id": "raj_anderson_3167",
        "address": {"address1": "386 Willow Lane", "address2": "Suite 231", "city": "Los Angeles", "country": "USA",
                    "state": "CA", "zip": "90093"},
        "items": [{"name": "Smart Thermostat", "product_id": "4896585277", "item_id": "3377900078", "price": 260.68,
                   "options": {"compatibility": "Apple HomeKit", "color": "white"}}],
        "status": "delivered",
        "fulfillments": [{"tracking_id": ["594255390976"], "item_ids": ["3377900078"]}],
        "payment_history": [{"transaction_type": "payment", "amount": 260.68, "payment_method_id": "gift_card_6662365"}]}},
}

# A flight, user and reservation in tau2's airline db.json layout (toolzoo's own values).
TAU2_AIRLINE_EXCERPT = {
    "flights": {"HAT901": {"flight_number": "HAT901", "origin": "PHL", "destination": "LGA",
                           "scheduled_departure_time_est": "06:00:00", "scheduled_arrival_time_est": "07:00:00",
                           "dates": {"2024-05-14": {"status": "cancelled"},
                                     "2024-05-15": {"status": "landed", "actual_departure_time_est": "2024-05-15T06:04:00",
                                                    "actual_arrival_time_est": "2024-05-15T07:30:00"},
                                     "2024-05-16": {"status": "available",
                                                    "available_seats": {"basic_economy": 16, "economy": 10, "business": 13},
                                                    "prices": {"basic_economy": 87, "economy": 122, "business": 471}}}}},
    "users": {"ada_byron_1815": {
        "user_id": "ada_byron_1815", "name": {"first_name": "Ada", "last_name": "Byron"},
        "address": {"address1": "12 Analytical Way", "address2": "Suite 1", "city": "Austin", "country": "USA",
                    "state": "TX", "zip": "78701"},
        "email": "ada.byron1815@example.com", "dob": "1985-12-10",
        "payment_methods": {"credit_card_1000001": {"source": "credit_card", "id": "credit_card_1000001", "brand": "visa",
                                                    "last_four": "1815"},
                            "certificate_1000002": {"source": "certificate", "id": "certificate_1000002", "amount": 250.0}},
        "saved_passengers": [{"first_name": "Ada", "last_name": "Byron", "dob": "1985-12-10"}],
        "membership": "gold", "reservations": ["ABC123"]}},
    "reservations": {"ABC123": {
        "reservation_id": "ABC123", "user_id": "ada_byron_1815", "origin": "PHL", "destination": "LGA",
        "flight_type": "one_way", "cabin": "economy",
        "flights": [{"origin": "PHL", "destination": "LGA", "flight_number": "HAT901", "date": "2024-05-16", "price": 122}],
        "passengers": [{"first_name": "Ada", "last_name": "Byron", "dob": "1985-12-10"}],
        "payment_history": [{"payment_id": "credit_card_1000001", "amount": 122}],
        "created_at": "2024-05-10T10:00:00", "total_baggages": 1, "nonfree_baggages": 0, "insurance": "no"}},
}


@pytest.mark.parametrize("name,excerpt", [("tau2_retail", TAU2_RETAIL_EXCERPT), ("tau2_airline", TAU2_AIRLINE_EXCERPT)])
def test_tau2_layout_loads_unchanged(tmp_path, name, excerpt):
    """The domain file with its `from:` pointed at a tau2-layout db.json excerpt."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / f"{name}_db.json").write_text(json.dumps(excerpt))
    shutil.copy(ZOO_DIR / f"{name}.yaml", tmp_path / f"{name}.yaml")
    d = load_domain(tmp_path / f"{name}.yaml")
    state = seed_state(d.spec, 0)
    assert state.to_json() == excerpt
    rt = DomainRuntime(d, state)
    for coll, records in excerpt.items():
        key = next(iter(records))
        tool = {"products": "get_product_details", "users": "get_user_details", "orders": "get_order_details",
                "flights": None, "reservations": "get_reservation_details"}[coll]
        if tool:
            arg = {"products": "product_id", "users": "user_id", "orders": "order_id", "reservations": "reservation_id"}[coll]
            assert call(rt, tool, **{arg: key}) == records[key]
    if name == "tau2_retail":
        assert call(rt, "find_user_id_by_email", email="juan.anderson5522@example.com") == "juan_anderson_5671"
        # The order's user is not in the excerpt: tau2 refuses the same way.
        assert error(rt, "return_delivered_order_items", order_id="#W6378322", item_ids=["3377900078"],
                     payment_method_id="gift_card_6662365").endswith("User not found")
        moved = call(rt, "modify_user_address", user_id="juan_anderson_5671", address1="1 Main St", address2="",
                     city="Austin", state="TX", country="USA", zip="78701")
        assert moved["address"]["city"] == "Austin" and moved["payment_methods"] == excerpt["users"]["juan_anderson_5671"]["payment_methods"]
    else:
        booked = call(rt, "update_reservation_flights", reservation_id="ABC123", cabin="business",
                      flights=[{"flight_number": "HAT901", "date": "2024-05-16"}], payment_id="credit_card_1000001")
        assert booked["cabin"] == "business" and booked["payment_history"][-1] == {"payment_id": "credit_card_1000001",
                                                                                   "amount": 349}  # 471 - 122


def _section_chars(text: str, names: tuple[str, ...]) -> int:
    """Characters of the named top-level YAML sections (key line plus its indented block)."""
    total, current = 0, None
    for line in text.splitlines(keepends=True):
        m = re.match(r"^([A-Za-z_][\w-]*):", line)
        if m:
            current = m.group(1)
        if current in names or (current or "").startswith("x-"):
            total += len(line)
    return total


def test_retail_tools_and_state_fit_in_20000_characters():
    # tools + state, counting the defs and the x- anchors they are built from (not the prompt,
    # seed or goal templates): tau2's own tool code is ~13,000 characters.
    text = (ZOO_DIR / "tau2_retail.yaml").read_text()
    size = _section_chars(text, ("tools", "state", "defs"))
    assert 10_000 < size <= 20_000, size
