import {expect} from 'chai'
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {Store, type StoredBan, type StoredJob} from '../src/engine/store/store.js'
import {tempTree} from './support/files.js'

function ban(uuid: string, id: string, until: number | null = 2000): StoredBan {
  return {uuid, jail: 'sshd', id, time: 1000, bantime: until === null ? -1 : until - 1000, until, ticket: JSON.stringify({uuid, 'a.b': 1, $x: 'y'}), refs: '[]'}
}

function job(jid: string, seq: number): StoredJob {
  return {jid, op: 'ban', action: 'fw', unique: 'sshd 1.2.3.4', due: 5, attempts: 0, ticket: '{}', params: '{"port":"ssh"}', seq}
}

function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '')
}

describe('Store', () => {
  it('keeps bans, jobs, history and positions across a reopen of the data directory', async () => {
    const dir = path.join(tempTree({}), 'data')
    const s = await Store.open(dir)
    await s.putBan(ban('u1', '192.0.2.1'))
    await s.putBan(ban('u2', '192.0.2.2', null))
    await s.addJobs([job('j2', 2), job('j1', 1)])
    await s.addHistory({id: '192.0.2.1', jail: 'sshd', time: 1000, bantime: 600})
    await s.addHistory({id: '192.0.2.1', jail: 'sshd', time: 500, bantime: 300})
    await s.positions.set('file:/var/log/auth.log', {offset: 123, fingerprint: 'ab'})
    // no close: a crash right after the awaited writes must not lose them
    const t = await Store.open(dir)
    const bans = await t.loadBans()
    expect(bans.map((b) => b.uuid).sort()).to.deep.equal(['u1', 'u2'])
    expect(bans.find((b) => b.uuid === 'u2')!.until).to.equal(null)
    expect(JSON.parse(bans.find((b) => b.uuid === 'u1')!.ticket)).to.deep.equal({uuid: 'u1', 'a.b': 1, $x: 'y'})
    expect((await t.loadJobs()).map((j) => j.jid)).to.deep.equal(['j1', 'j2'])
    expect((await t.loadHistory()).map((h) => h.time)).to.deep.equal([500, 1000])
    expect(await t.loadHistory(600)).to.have.length(1)
    expect(await t.positions.get('file:/var/log/auth.log')).to.deep.equal({offset: 123, fingerprint: 'ab'})
    expect(await t.positions.get('nothing')).to.equal(undefined)
    await t.deleteBan('u1')
    await t.deleteJob('j1')
    expect(await t.pruneHistory(600)).to.equal(1)
    await t.close()
    const u = await Store.open(dir)
    expect((await u.loadBans()).map((b) => b.uuid)).to.deep.equal(['u2'])
    expect((await u.loadJobs()).map((j) => j.jid)).to.deep.equal(['j2'])
    expect(await u.loadHistory()).to.have.length(1)
    await u.close()
  })

  it('compacts its append-only datafiles after many writes and on close', async () => {
    const dir = tempTree({})
    const s = await Store.open(dir, {compactEvery: 50})
    for (let i = 0; i < 49; i++) await s.positions.set('k', {offset: i})
    expect(lines(path.join(dir, 'positions.db')).length).to.be.greaterThan(40)
    await s.positions.set('k', {offset: 49})
    expect(lines(path.join(dir, 'positions.db'))).to.have.length(1)
    for (let i = 0; i < 10; i++) await s.putBan(ban('u', '192.0.2.9', 3000 + i))
    expect(lines(path.join(dir, 'bans.db')).length).to.be.greaterThan(5)
    await s.close()
    expect(lines(path.join(dir, 'bans.db'))).to.have.length(1)
    expect(JSON.parse(lines(path.join(dir, 'bans.db'))[0]!).until).to.equal(3009)
  })

  it('starts after a crash left a torn last line, keeping every complete record', async () => {
    const dir = tempTree({})
    const s = await Store.open(dir)
    await s.putBan(ban('u1', '192.0.2.1'))
    fs.appendFileSync(path.join(dir, 'bans.db'), '{"uuid":"u2","jail":"ss')
    const t = await Store.open(dir)
    expect((await t.loadBans()).map((b) => b.uuid)).to.deep.equal(['u1'])
    await t.close()
  })

  it('names the data directory it cannot create', async () => {
    const file = path.join(tempTree({'taken': 'x'}), 'taken')
    let err: Error | undefined
    try {
      await Store.open(path.join(file, 'data'))
    } catch (e) {
      err = e as Error
    }
    expect(err?.message).to.match(/^cannot create the data directory .*taken.data: /)
  })

  it('has a memory-only form that writes no file', async () => {
    const s = Store.memory()
    await s.putBan(ban('u1', '192.0.2.1'))
    await s.positions.set('x', [1, 2])
    expect(await s.loadBans()).to.have.length(1)
    expect(await s.positions.get('x')).to.deep.equal([1, 2])
    expect(s.dir).to.equal(undefined)
    await s.close()
  })

  it('refuses a data directory another live process holds, and takes over a dead one\'s', async () => {
    const dir = tempTree({})
    const sleeper = spawn('sleep', ['60'], {stdio: 'ignore'})
    try {
      fs.writeFileSync(path.join(dir, 'spylog.lock'), String(sleeper.pid))
      let err: Error | undefined
      try {
        await Store.open(dir)
      } catch (e) {
        err = e as Error
      }
      expect(err?.message).to.equal(`the data directory ${dir} is in use by process ${sleeper.pid} (another spylog daemon?)`)
    } finally {
      sleeper.kill('SIGKILL')
    }
    await new Promise((r) => sleeper.once('exit', r))
    await (await Store.open(dir)).close()
    // a lock from before the last boot is stale even when its pid is alive again (here: our parent's)
    fs.writeFileSync(path.join(dir, 'spylog.lock'), String(process.ppid))
    const old = new Date(Date.now() - os.uptime() * 1000 - 3_600_000)
    fs.utimesSync(path.join(dir, 'spylog.lock'), old, old)
    const s = await Store.open(dir)
    expect(fs.readFileSync(path.join(dir, 'spylog.lock'), 'utf8')).to.equal(String(process.pid))
    await s.close()
    expect(fs.existsSync(path.join(dir, 'spylog.lock'))).to.equal(false)
  })
})
