"""faust's Kafka transport, adjusted for Tansu (the embedded broker).

Tansu answers a fetch request only when the request's wait time is up, even if records arrived
in the meantime; Apache Kafka answers as soon as there is data. faust hard-codes a 1.5 s wait,
so on Tansu every hop between two agents (raw -> dedup -> unique -> claims -> claims topic ->
novelty) waits about 0.75 s on average, and an alert takes seconds. With a short wait the hops
take milliseconds; the price is a few empty fetches a second from an idle worker.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_kafka

FETCH_WAIT_MS = 50


class _ShortFetchConsumerThread(faust_kafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands this to its fetcher when the consumer starts, which is after this.
        consumer._fetch_max_wait_ms = FETCH_WAIT_MS
        return consumer


class _ShortFetchConsumer(faust_kafka.Consumer):
    def _new_consumer_thread(self) -> faust_kafka.AIOKafkaConsumerThread:
        return _ShortFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)


class TansuTransport(faust_kafka.Transport):
    Consumer = _ShortFetchConsumer
