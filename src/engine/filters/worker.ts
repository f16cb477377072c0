/**
 * The filter worker (see host.ts): builds the FilterService from the filter configurations it is
 * sent, filters each batch of records, posts failures as they are found and `done` per batch.
 * Before each record it writes the time it started and the record's index into the shared array
 * the host's watchdog reads.
 */
import {parentPort, workerData} from 'node:worker_threads'
import '../patterns/safety.js'
import {SinkLogger} from '../log/logger.js'
import type {HostMessage, WorkerMessage} from './host.js'
import {FilterService} from './service.js'
import {buildCaptureFilter} from '../jails/cfilter.js'
import type {Failure} from '../types.js'

const port = parentPort!
const {shared, counters} = workerData as {shared: Float64Array; counters: Float64Array}
const log = new SinkLogger('warning', [(line) => process.stderr.write(line + '\n')])
let service: FilterService | undefined

const post = (m: WorkerMessage): void => port.postMessage(m)
const emit = (failure: Failure): void => post({type: 'failure', failure})

port.on('message', (m: HostMessage) => {
  switch (m.type) {
    case 'init':
      try {
        service = new FilterService({filters: m.filters}, {log, captureFilter: (c) => buildCaptureFilter(c, {log})}, m.only === undefined ? undefined : new Set(m.only))
        service.seedStats(counters)
        post({type: 'ready'})
      } catch (e) {
        post({type: 'init-error', message: e instanceof Error ? e.message : String(e)})
      }
      break
    case 'batch': {
      const s = service!
      const rs = m.records
      for (let i = 0; i < rs.length; i++) {
        shared[1] = i
        shared[0] = performance.timeOrigin + performance.now()
        s.process(rs[i]!, emit)
        s.syncStats(rs[i]!.source, counters)
      }
      shared[0] = 0
      post({type: 'done', seq: m.seq})
      break
    }
  }
})
