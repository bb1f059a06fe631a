/**
 * Port of the registry, store, lock, verify and select parts of tests/test_reliability.py: real
 * processes, signals and file systems. (Probe and bench reliability come with those features.)
 */
import { describe, expect, test } from 'bun:test'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, renameSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LoaderError, RegistryError, RegistryWriteError } from '../../src/core/errors.ts'
import { parseRegistry } from '../../src/core/registry.ts'
import { selectModel } from '../../src/core/service.ts'
import { runBinary, startServer } from '../helpers/binary.ts'
import { BINARY } from '../helpers/paths.ts'
import { coreModule, spawnScript } from '../helpers/child.ts'
import { referenceBackend } from '../helpers/reference-backend.ts'
import { depsFor, entry, makeModelDir, readJson, tempDir, writeRegistry } from '../helpers/registry.ts'
import { openStore } from '../helpers/store.ts'
import { seeded } from '../helpers/images.ts'

type Raw = Record<string, any>

/**
 * These tests run hundreds of processes or thousands of writes: more than bun's 5 s default on a busy
 * two-core machine (bunfig.toml's [test] timeout is not read by bun 1.4.5).
 */
const SLOW = 60_000

const tempFiles = (folder: string) => readdirSync(folder).filter((n) => n.endsWith('.tmp'))

/** Whether this machine lets us mount a small tmpfs in a private mount namespace. */
function canMountTmpfs(): boolean {
	if (!Bun.which('unshare')) return false
	const probe = Bun.spawnSync(['unshare', '-m', 'sh', '-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; s=$?; rmdir "$d"; exit $s'], {
		stderr: 'pipe'
	})
	return probe.exitCode === 0
}

describe('many processes at once', () => {
	test('fifty processes verify, lock, probe, unlock and re-lock their own model while the server and a reader read', async () => {
		using dir = tempDir()
		await using backend = referenceBackend({ mode: 'seeing' })
		const names = Array.from({ length: 50 }, (_, i) => `model-${String(i).padStart(2, '0')}`)
		const entries = names.map((n) => {
			const folder = join(dir.path, 'models', n)
			mkdirSync(folder, { recursive: true })
			for (let j = 0; j < 3; j++) writeFileSync(join(folder, `part${j}.bin`), Buffer.alloc(2000 + j, n))
			return entry(n, { modelPath: folder, baseUrl: backend.endpoint, extra: { team: { owner: n } } })
		})
		const path = writeRegistry(join(dir.path, 'model_registry.json'), entries)
		await using server = await startServer(path, { cwd: dir.path })

		let stop = false
		const reads = { file: 0, api: 0 }
		const problems: string[] = []
		const reader = (async () => {
			while (!stop) {
				try {
					const data = JSON.parse(readFileSync(path, 'utf8')) as Raw[]
					const got = data.map((e) => e['name'])
					if (JSON.stringify(got) !== JSON.stringify(names)) problems.push(`file read: names ${got.join(',')}`)
					reads.file++
				} catch (error) {
					problems.push(`file read: ${String(error)}`)
				}
				try {
					const r = await fetch(`${server.url}/v1/models`)
					const body = (await r.json()) as unknown[]
					if (r.status !== 200 || body.length !== 50) problems.push(`api read: ${r.status} ${body.length}`)
					reads.api++
				} catch (error) {
					problems.push(`api read: ${String(error)}`)
				}
			}
		})()

		const env = { IMAGEWORKS_LOCK_TIMEOUT: '120' }
		const run = (...args: string[]) => runBinary(['--registry', path, ...args], { env })
		let results
		try {
			results = await Promise.all(
				names.map(async (n) => [
					await run('verify', n),
					await run('lock', n),
					await run('probe-vision', n),
					await run('unlock', n),
					await run('lock', n, '--set-expected')
				])
			)
		} finally {
			stop = true
			await reader
		}
		const failures = results.flat().filter((r) => r.exitCode !== 0)
		expect(failures.map((r) => r.stderr)).toEqual([])
		expect(problems).toEqual([])
		expect(reads.file).toBeGreaterThan(10)
		expect(reads.api).toBeGreaterThan(10)

		const listed = (await (await fetch(`${server.url}/v1/models`)).json()) as Raw[]
		const byName = new Map(listed.map((m) => [m['name'], m]))
		const final = readJson<Raw[]>(path)
		expect(final.map((e) => e['name'])).toEqual(names)
		for (const e of final) {
			expect(e['version_lock']['locked']).toBe(true)
			expect(e['version_lock']['expected_aggregate_sha256']).toBe(e['artifacts']['aggregate_sha256'])
			expect(e['artifacts']['files']).toHaveLength(3)
			expect(e['team']).toEqual({ owner: e['name'] })
			expect(e['probes']['vision']['vision_ok']).toBe(true) // the reference backend sees
			expect(byName.get(e['name'])?.['locked']).toBe(true)
		}
		const deps = depsFor(path)
		try {
			for (const n of names) {
				expect(selectModel(deps, { name: n }).locked).toBe(true) // fingerprints recorded for every model
				expect(deps.state.probeHistory(n).map((p) => p.outcome)).toEqual(['verified']) // every attempt kept
			}
		} finally {
			deps.state.close()
		}
	}, SLOW)
})

const KILLED_WRITER = `
import { writeSync } from 'node:fs'
import { StateDb, statePathFor } from ${coreModule('state.ts')}
import { RegistryStore } from ${coreModule('store.ts')}
const path = process.argv[2]
const store = new RegistryStore(path, new StateDb(statePathFor(path), { lockTimeout: 30 }))
writeSync(1, 'ready\\n')
for (;;) {
	await store.updateEntry('counter', (raw) => {
		const m = raw.metadata
		m.n += 1
		m.pad = 'x'.repeat(m.n % 5000)
	})
}
`

describe('crashes', () => {
	test('writers killed mid-write leave the old or the new file, and no stuck lock', async () => {
		using dir = tempDir()
		const entries = [entry('counter', { extra: { metadata: { n: 0, pad: '' } } }), ...Array.from({ length: 2000 }, (_, i) => entry(`filler-${i}`))]
		const path = writeRegistry(join(dir.path, 'model_registry.json'), entries)
		const random = seeded(42)
		const kills = 40
		let last = 0
		for (let k = 0; k < kills; k++) {
			{
				await using writer = spawnScript(dir.path, 'writer.ts', KILLED_WRITER, [path])
				expect(await writer.line()).toBe('ready')
				await Bun.sleep(random() * 250) // a random moment in the writer's loop, not a wait for something
				writer.proc.kill('SIGKILL')
				expect(await writer.proc.exited).not.toBe(0)
			}
			using store = openStore(path, { lockTimeout: 2 })
			const registry = store.load() // parses and validates: never a broken file
			expect(registry.entries.length).toBe(2001)
			const n = (readJson<Raw[]>(path)[0] as Raw)['metadata']['n'] as number
			expect(n).toBeGreaterThanOrEqual(last)
			last = n
			const started = performance.now()
			await store.updateEntry('counter', (raw) => {
				;(raw['metadata'] as Raw)['n'] += 1
			})
			expect(performance.now() - started).toBeLessThan(1000) // the dead writer's lock went with it
			last += 1
			expect(tempFiles(dir.path)).toEqual([]) // its leftovers were swept under the lock
		}
		expect(last).toBeGreaterThan(kills) // the writers made progress between kills
		expect((readJson<Raw[]>(path)[0] as Raw)['metadata']['n']).toBe(last)
	}, SLOW)

	test('a corrupt registry while serving degrades, keeps serving the last good copy, then heals', async () => {
		using dir = tempDir()
		const modelDir = makeModelDir(dir.path)
		const path = writeRegistry(join(dir.path, 'model_registry.json'), [entry('tiny', { modelPath: modelDir }), entry('b')])
		await using server = await startServer(path, { cwd: dir.path })
		const get = async (route: string) => {
			const r = await fetch(server.url + route)
			return { status: r.status, body: (await r.json()) as Raw }
		}
		const post = async (route: string, body: unknown) => {
			const r = await fetch(server.url + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
			return { status: r.status, body: (await r.json()) as Raw }
		}
		expect(await get('/healthz')).toEqual({ status: 200, body: { status: 'ok', models: 2 } })
		const good = readFileSync(path, 'utf8')
		const truncated = good.slice(0, Math.floor(good.length / 2)) // a truncated hand edit
		writeFileSync(path, truncated)

		const health = await get('/healthz')
		expect(health.status).toBe(503)
		expect(health.body['status']).toBe('degraded')
		expect(health.body['models']).toBe(2)
		expect(health.body['reason']).toContain('is invalid (1 problem)')
		const models = await get('/v1/models')
		expect((models.body as unknown as Raw[]).map((m) => m['name'])).toEqual(['b', 'tiny'])
		expect((await post('/v1/select', { name: 'tiny' })).status).toBe(200)
		const verify = await post('/v1/verify', { name: 'tiny' })
		expect(verify.status).toBe(503)
		expect(verify.body['detail']['error']).toBe('registry_invalid')
		expect(verify.body['detail']['message']).toContain('malformed JSON at line')
		expect(readFileSync(path, 'utf8')).toBe(truncated) // never overwritten

		writeFileSync(path, good)
		expect(await get('/healthz')).toEqual({ status: 200, body: { status: 'ok', models: 2 } })
		expect((await post('/v1/verify', { name: 'tiny' })).status).toBe(200)
	})

	test('the API stays up when the registry file disappears, and recovers when it is back', async () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('a')])
		await using server = await startServer(path, { cwd: dir.path })
		expect((await fetch(`${server.url}/v1/models`)).status).toBe(200)
		const moved = join(dir.path, 'r.bak')
		renameSync(path, moved)
		const health = await fetch(`${server.url}/healthz`)
		const body = (await health.json()) as Raw
		expect(health.status).toBe(503)
		expect(body['status']).toBe('degraded')
		expect(body['reason']).toStartWith('Registry not found: ')
		const listed = (await (await fetch(`${server.url}/v1/models`)).json()) as Raw[]
		expect(listed.map((m) => m['name'])).toEqual(['a'])
		renameSync(moved, path)
		expect(((await (await fetch(`${server.url}/healthz`)).json()) as Raw)['status']).toBe('ok')
	})
})

const HOLDER = `
import { writeSync } from 'node:fs'
import { StateDb, statePathFor } from ${coreModule('state.ts')}
const state = new StateDb(statePathFor(process.argv[2]))
await state.withWriteLock(() => {
	writeSync(1, 'held\\n')
	Bun.sleepSync(120_000) // until killed
})
`

describe('the write lock', () => {
	test('times out while a live process holds it, and is free the moment that process is killed', async () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('a')])
		await using holder = spawnScript(dir.path, 'holder.ts', HOLDER, [path])
		expect(await holder.line()).toBe('held')
		const blocked = await runBinary(['--registry', path, 'lock', 'a'], { env: { IMAGEWORKS_LOCK_TIMEOUT: '0.5' } })
		expect(blocked.exitCode).toBe(1)
		expect(blocked.stderr).toContain(
			`Timed out after 0.5s waiting for the write lock of ${join(dir.path, 'r.state.sqlite')}: another imageworks-loader process is writing. Retry in a moment`
		)
		expect(readJson<Raw[]>(path)[0]?.['version_lock']['locked']).toBe(false)
		holder.proc.kill('SIGKILL')
		await holder.proc.exited
		const free = await runBinary(['--registry', path, 'lock', 'a'], { env: { IMAGEWORKS_LOCK_TIMEOUT: '2' } })
		expect({ exitCode: free.exitCode, stderr: free.stderr }).toEqual({ exitCode: 0, stderr: '' })
		expect(readJson<Raw[]>(path)[0]?.['version_lock']['locked']).toBe(true)
	})
})

const RACING_READER = `
import { readFileSync, writeSync } from 'node:fs'
const path = process.argv[2]
let reads = 0
let bad = 0
const end = Date.now() + 60_000
writeSync(1, 'ready\\n')
while (Date.now() < end) {
	try {
		const data = JSON.parse(readFileSync(path, 'utf8'))
		if (data.length !== 301) throw new Error('wrong length')
		reads++
		if (data[0].metadata.n >= 200) break
	} catch {
		bad++
	}
}
writeSync(1, reads + ' ' + bad + '\\n')
`

describe('readers', () => {
	test('never see a partial file under rapid writes', async () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [
			entry('a', { extra: { metadata: { n: 0 } } }),
			...Array.from({ length: 300 }, (_, i) => entry(`f${i}`))
		])
		await using reader = spawnScript(dir.path, 'reader.ts', RACING_READER, [path])
		expect(await reader.line()).toBe('ready')
		using store = openStore(path)
		for (let i = 0; i < 200; i++) {
			await store.updateEntry('a', (raw) => {
				;(raw['metadata'] as Raw)['n'] += 1
			})
		}
		const [reads, bad] = (await reader.line()).split(' ').map(Number)
		expect(bad).toBe(0)
		expect(reads).toBeGreaterThan(50)
		expect(parseRegistry(readFileSync(path, 'utf8'), path).get('a').metadata).toEqual({ n: 200 })
	}, SLOW)
})

const DISK_FULL = `
import { closeSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs'
import { RegistryWriteError } from ${coreModule('errors.ts')}
import { StateDb, statePathFor } from ${coreModule('state.ts')}
import { RegistryStore } from ${coreModule('store.ts')}
const folder = process.argv[2]
const path = folder + '/model_registry.json'
writeFileSync(path, JSON.stringify([{ name: 'a', backend: 'vllm', metadata: { blob: '' } }], null, 2))
const store = new RegistryStore(path, new StateDb(statePathFor(path)))
await store.updateEntry('a', () => undefined) // the state database is created while there is room
const before = readFileSync(path)
const fd = openSync(folder + '/filler', 'w') // fill the file system
try { for (;;) writeSync(fd, Buffer.alloc(4096, 48)) } catch {}
try { for (;;) writeSync(fd, Buffer.alloc(1, 48)) } catch {}
closeSync(fd)
let outcome
try {
	await store.updateEntry('a', (raw) => { raw.metadata.blob = 'x'.repeat(200_000) })
	outcome = 'written'
} catch (error) {
	outcome = error instanceof RegistryWriteError ? error.message : 'unexpected: ' + String(error)
}
console.log(JSON.stringify({
	outcome,
	intact: Buffer.compare(readFileSync(path), before) === 0,
	temps: readdirSync(folder).filter((n) => n.endsWith('.tmp'))
}))
`

describe('faults of the file system', () => {
	test.skipIf(!canMountTmpfs())('a full disk is a clear error and the old file survives (a real, small tmpfs)', async () => {
		using dir = tempDir()
		const folder = join(dir.path, 'small')
		mkdirSync(folder)
		const script = join(dir.path, 'disk-full.ts')
		writeFileSync(script, DISK_FULL)
		const proc = Bun.spawn(
			['unshare', '-m', 'sh', '-c', 'mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" "$3" "$1"', 'sh', folder, process.execPath, script],
			{ stdout: 'pipe', stderr: 'pipe' }
		)
		const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
		expect({ code, err }).toEqual({ code: 0, err: '' })
		const result = JSON.parse(out) as { outcome: string; intact: boolean; temps: string[] }
		expect(result).toEqual({
			outcome: `Could not write ${join(folder, 'model_registry.json')}: the disk is full. The previous file is intact; free disk space or fix the folder permissions and retry`,
			intact: true,
			temps: []
		})
	})

	test.skipIf(!canMountTmpfs())('a model on a read-only file system verifies, through the binary, in a hashing child', async () => {
		using dir = tempDir()
		const models = join(dir.path, 'ro')
		mkdirSync(models)
		const registry = writeRegistry(join(dir.path, 'model_registry.json'), [entry('ro', { modelPath: models })])
		const data = randomBytes(80 << 20) // over 64 MiB: hashed in a child process, which maps files
		const expected = createHash('sha256').update(data).digest('hex')
		writeFileSync(join(dir.path, 'data.bin'), data)
		const shell = 'mount -t tmpfs -o size=100m tmpfs "$1" && cp "$2" "$1/model.bin" && mount -o remount,ro "$1" && exec "$3" --registry "$4" --json verify ro'
		const proc = Bun.spawn(['unshare', '-m', 'sh', '-c', shell, 'sh', models, join(dir.path, 'data.bin'), BINARY, registry], { stdout: 'pipe', stderr: 'pipe' })
		const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
		expect({ code, err }).toEqual({ code: 0, err: '' })
		const result = JSON.parse(out) as { status: string; aggregate_sha256: string }
		expect(result.status).toBe('ok')
		expect(result.aggregate_sha256).toBe(createHash('sha256').update(`${expected}  model.bin`).digest('hex'))
	}, SLOW)

	test('a file truncated while the server hashes it fails that verify, not the server', async () => {
		using dir = tempDir()
		const models = join(dir.path, 'm')
		mkdirSync(models)
		const file = join(models, 'model.bin')
		writeFileSync(file, '')
		truncateSync(file, 1 << 30) // sparse: 1 GiB to hash, no disk used
		const registry = writeRegistry(join(dir.path, 'model_registry.json'), [entry('shrinks', { modelPath: models })])
		await using server = await startServer(registry)
		const pending = fetch(`${server.url}/v1/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"shrinks"}' })
		await Bun.sleep(150) // hashing 1 GiB takes most of a second
		truncateSync(file, 4096)
		const res = await pending
		const body = (await res.json()) as { detail: { error: string; message: string } }
		expect(res.status).toBe(422)
		expect(body.detail.message).toContain('model.bin changed while it was being hashed: verify again once it is complete')
		expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
		expect(server.proc.exitCode).toBeNull()
	}, SLOW)

	test('a write error is a registry error with its own code (the API answers 503, the CLI exits 1)', () => {
		const err = new RegistryWriteError('/x/r.json', 'the disk is full')
		expect(err).toBeInstanceOf(RegistryError)
		expect(err).toBeInstanceOf(LoaderError)
		expect(err.toJSON()).toEqual({
			error: 'registry_write_failed',
			message: 'Could not write /x/r.json: the disk is full. The previous file is intact; free disk space or fix the folder permissions and retry'
		})
	})
})
