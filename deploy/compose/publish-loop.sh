#!/bin/sh
# The docker-compose publisher: a job's lifecycle (queued → started → progress → completed,
# every fifth job failed instead) every PUBLISH_EVERY_S seconds, with `webhook-bridge publish`.
# A publish that fails (the bridge has not created the stream yet) is retried next round.
n=0
while true; do
    n=$((n + 1))
    job="j_compose_$n"
    last=job.completed
    [ $((n % 5)) -eq 0 ] && last=job.failed
    for event in job.queued job.started job.progress "$last"; do
        webhook-bridge publish "$event" --job-id "$job" \
            --data '{"tenant_id": "acme", "document_id": "12345"}' || break
    done
    sleep "${PUBLISH_EVERY_S:-3}"
done
