-- A claim read queued tries in priority order on ix_ti_claim (state, queue, priority_weight
-- DESC, id) and skipped those of full pools row by row: a pool of a few slots throttling
-- 10,000 queued tries (the usual way to rate-limit a big fan-out) cost every claim a walk of
-- them all, ≈ 12 ms here, even when it found nothing. Claims now list the pools with free slots
-- and read each one's next tries directly (store/transitions/claimTasks.ts) on this index.
-- It replaces ix_ti_claim and ix_ti_state_pool (state, pool), its prefix, which served the
-- pools' waiting-slot counts; releaseScheduled and the queued-by-queue metric read its state
-- prefix. A state change now rewrites four secondary indexes instead of five.
ALTER TABLE task_instance
  DROP KEY ix_ti_claim,
  DROP KEY ix_ti_state_pool,
  ADD KEY ix_ti_pool_queue (state, pool, queue, priority_weight DESC, id);
