"""How many attempts one webhook endpoint has in flight, across every worker.

An attempt takes a slot of its endpoint before it sends and gives it back when it is done, however
it ended (success, failure, timeout). An endpoint has ``WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT``
slots: a customer's endpoint that hangs holds at most that many of the webhooks worker's threads,
and the attempts that find no slot wait elsewhere (``webhook_delivery_attempt`` defers them)
instead of taking more.

On Redis the slots of an endpoint are a sorted set of holders scored by when their hold runs out,
taken and counted in one script call (one round trip, atomic across workers); a holder whose
worker was killed mid-attempt drops out when its hold runs out. Without Redis (the embedded
default) each slot is a cache key taken with ``cache.add``.
"""

import time
import uuid
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver

from celaest.redis import cache_key, redis_cache_client

# KEYS[1]: the endpoint's holders. ARGV: hold in ms, slots, holder.
# Redis' own clock, so workers whose clocks disagree still agree on which holds ran out.
_TAKE_LUA = """
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[1]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class EndpointSlot:
    key: str
    holder: str

    def release(self) -> None:
        client = redis_cache_client()
        if client is not None:
            client.zrem(self.key, self.holder)
        elif cache.get(self.key) == self.holder:  # not a slot whose hold ran out and was retaken
            cache.delete(self.key)


def endpoint_slot_take(*, webhook_id, hold_seconds: float) -> EndpointSlot | None:
    """One of the endpoint's in-flight slots, held at most ``hold_seconds`` (the safety for a
    worker killed before it releases it); None when they are all taken."""
    holder = uuid.uuid4().hex  # never the delivery's id: a duplicate message must not free its twin's slot
    limit = settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT
    client = redis_cache_client()
    if client is not None:
        key = cache_key(f"webhook-in-flight:{webhook_id}")
        taken = _take_script()(keys=[key], args=[int(hold_seconds * 1000), limit, holder], client=client)
        return EndpointSlot(key, holder) if taken else None
    for number in range(limit):
        key = f"webhook-slot:{webhook_id}:{number}"
        if cache.add(key, holder, timeout=hold_seconds):
            return EndpointSlot(key, holder)
    return None


def endpoint_slots_in_flight(*, webhook_id) -> int:
    """Attempts of this endpoint in flight now."""
    client = redis_cache_client()
    if client is not None:
        key = cache_key(f"webhook-in-flight:{webhook_id}")
        return client.zcount(key, int(time.time() * 1000), "+inf")
    keys = [f"webhook-slot:{webhook_id}:{number}" for number in range(settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT)]
    return len(cache.get_many(keys))


@lru_cache(maxsize=1)
def _take_script():
    return redis_cache_client().register_script(_TAKE_LUA)


@receiver(setting_changed)
def _reset_script(*, setting, **kwargs):
    if setting == "CACHES":
        _take_script.cache_clear()
