"""Fraud write services: score a payment once, record every fired rule, and hold it at or above the threshold.

Off the request path: called by the `fraud.score` outbox subscriber on `payment.authorized` (fraud.handlers), so
authorization never waits for it. The settlement hold itself belongs to payments
(payments.settlement_holds.settlement_hold_place, which emits `payment.held`); it is placed in the same transaction
as the result, so there is never a result saying "hold" without the hold, or the other way round.
"""

from __future__ import annotations

import structlog
from django.db import IntegrityError, transaction

from fraud import rules, velocity
from fraud.models import Decision, FiredRule, FraudResult
from payments import settlement_holds
from payments.contracts import PaymentRiskFacts
from payments.selectors import payment_risk_facts

log = structlog.get_logger(__name__)

#: The hold reason merchants see on a payment held by fraud scoring.
HOLD_REASON = "fraud_review"


def _velocity_counts(facts: PaymentRiskFacts, config: rules.ScoringConfig) -> dict[tuple[str, int], int]:
    counts: dict[tuple[str, int], int] = {}
    for kind, windows in rules.velocity_windows(config).items():
        dimension, fact = rules.VELOCITY_DIMENSIONS[kind]
        value = fact(facts)
        if not value:
            continue
        observed = velocity.observe(
            dimension=dimension, value=value, member=facts.payment_id, at=facts.authorized_at, windows=windows
        )
        counts.update({(kind, w): c for w, c in zip(windows, observed)})
    return counts


def payment_score(*, payment_id: str, event_id: str = "") -> FraudResult:
    """Score a payment with the rules in force and record the result; hold it when the score reaches the hold
    score (`payment.held`). Scores are integer points; each fired rule is stored with its contribution.

    Idempotent on the payment: when a result exists (this event, or a concurrent delivery of it, was already
    scored) it is returned and nothing changes; velocity windows count each payment once (fraud.velocity).
    Raises payments.errors.NotFound for an unknown payment, redis.RedisError when Redis is down (retried by the
    outbox).
    """
    existing = FraudResult.objects.filter(payment_id=payment_id).first()
    if existing is not None:
        return existing
    facts = payment_risk_facts(payment_id=payment_id)
    config = rules.load_config()
    hits = rules.evaluate(
        facts,
        config,
        velocity_counts=_velocity_counts(facts, config),
        ip_country_code=rules.ip_country(facts.customer_ip),
    )
    score = sum(h.contribution for h in hits)
    decision = Decision.HOLD if score >= config.hold_score else Decision.ALLOW
    with transaction.atomic(durable=True):
        try:
            with transaction.atomic():
                result = FraudResult.objects.create(
                    payment_id=payment_id,
                    event_id=event_id,
                    score=score,
                    hold_score=config.hold_score,
                    decision=decision,
                )
        except IntegrityError:
            # Another worker scored this payment first (it committed while we waited on the unique index).
            return FraudResult.objects.get(payment_id=payment_id)
        FiredRule.objects.bulk_create(
            [
                FiredRule(
                    result=result,
                    rule_id=h.rule_id,
                    rule_name=h.rule_name,
                    kind=h.kind,
                    contribution=h.contribution,
                    detail=h.detail,
                )
                for h in hits
            ]
        )
        if decision == Decision.HOLD:
            settlement_holds.settlement_hold_place(
                payment_id=payment_id,
                reason=HOLD_REASON,
                source="fraud",
                note=f"score {score} ≥ {config.hold_score}: "
                + ", ".join(f"{h.rule_name} +{h.contribution}" for h in hits),
                details={
                    "score": score,
                    "hold_score": config.hold_score,
                    "rules": [
                        {"rule": h.rule_name, "kind": h.kind, "contribution": h.contribution, "detail": h.detail}
                        for h in hits
                    ],
                },
            )
    log.info("fraud.scored", payment_id=payment_id, score=score, decision=decision, rules=[h.rule_name for h in hits])
    return result
