"""Alert dispatch without the I/O (spec §7, §12 #21 and #26): which channels a stored alert goes to, what each
message says, and what each channel's answer means. The dispatcher actor (``actors/dispatcher.py``) does the rest.

- `_messages`: stored alerts grouped into messages as upstream sends them, and the facts a message is planned with;
- `_content`: what a message says: upstream's descriptions and why it fired;
- `_payloads`: the channels a message goes to and each channel's request body (never a credential);
- `_answers`: what a channel's answer means, and the retry policy.
"""

from ._answers import (
    FAILED,
    RETRY,
    SENT,
    Settled,
    Verdict,
    backoff_delay,
    excerpt,
    judge_answer,
    parse_retry_after,
    redact_url,
    settle,
    webhook_signature,
)
from ._content import Content, render
from ._messages import (
    CHANNELS,
    CONSOLE,
    OPSGENIE,
    PAGERDUTY,
    SLACK,
    WEBHOOK,
    AlertRow,
    ChannelSetup,
    CheckFacts,
    Message,
    alert_ref,
    group_alerts,
    message_key,
)
from ._payloads import Delivery, minimal_deliveries, plan_deliveries, primary_channel

__all__ = [
    "CHANNELS",
    "CONSOLE",
    "FAILED",
    "OPSGENIE",
    "PAGERDUTY",
    "RETRY",
    "SENT",
    "SLACK",
    "WEBHOOK",
    "AlertRow",
    "ChannelSetup",
    "CheckFacts",
    "Content",
    "Delivery",
    "Message",
    "Settled",
    "Verdict",
    "alert_ref",
    "backoff_delay",
    "excerpt",
    "group_alerts",
    "judge_answer",
    "message_key",
    "minimal_deliveries",
    "parse_retry_after",
    "plan_deliveries",
    "primary_channel",
    "redact_url",
    "render",
    "settle",
    "webhook_signature",
]
