/**
 * One factory for every source kind of the configuration model: the daemon calls it for each
 * source some running filter reads.
 */
import type {FilterConfig, SourceConfig} from '../config/model.js'
import {createEslSource} from './esl.js'
import {createEventLogSource} from './eventlog.js'
import {createFileSource} from './file.js'
import {createJournalSource} from './journal.js'
import {createNetSource} from './net.js'
import {createProcessSource} from './process.js'
import type {Source, SourceContext} from './source.js'
import {createSyslogSource} from './syslog.js'
import {createTrapSource} from './trap.js'

/** Builds the source of `cfg`; `filters` are the filters that read it (the event log subscribes to their `events`). */
export function createSource(cfg: SourceConfig, ctx: SourceContext, filters: readonly FilterConfig[] = []): Source {
  switch (cfg.kind) {
    case 'file':
      return createFileSource(cfg, ctx)
    case 'journal':
      return createJournalSource(cfg, ctx)
    case 'syslog':
      return createSyslogSource(cfg, ctx)
    case 'net':
      return createNetSource(cfg, ctx)
    case 'trap':
      return createTrapSource(cfg, ctx)
    case 'eventlog':
      if (cfg.protocol === 'local') return createEventLogSource(cfg, ctx, {selectors: filters.flatMap((f) => f.events ?? [])})
      return createTrapSource(cfg, ctx)
    case 'esl':
      return createEslSource(cfg, ctx)
    case 'process':
      return createProcessSource(cfg, ctx)
  }
}
