/**
 * `serve` as an operator meets it: one ready line, `health` for container checks, and SIGTERM / SIGINT
 * stopping cleanly (new connections refused, requests in flight finished, state database closed, exit 0
 * within 5 s), proven against the compiled binary with a verify and a burst of selects in flight.
 */
import { describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { statePathFor } from '../../src/core/state.ts'
import { runBinary, startServer } from '../helpers/binary.ts'
import { entry, tempDir, writeRegistry } from '../helpers/registry.ts'

const SLOW = 60_000

/** A registry with a small model and one whose single sparse file takes `seconds` or so to hash. */
function registryWithBigModel(dir: string, gib: number): string {
	const big = join(dir, 'big')
	mkdirSync(big)
	writeFileSync(join(big, 'model.bin'), '')
	truncateSync(join(big, 'model.bin'), gib * 2 ** 30) // sparse: costs hashing time, no disk
	return writeRegistry(join(dir, 'model_registry.json'), [entry('big', { modelPath: big }), entry('small', { aliases: ['s'] })])
}

const post = (url: string, body: unknown) =>
	fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/** Whether a new connection to `url` is refused (or reset) rather than answered. */
async function refused(url: string): Promise<boolean> {
	try {
		await fetch(url, { keepalive: false })
		return false
	} catch {
		return true
	}
}

const childrenOf = (pid: number): number[] => {
	try {
		const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
		return text ? text.split(/\s+/).map(Number) : []
	} catch {
		return []
	}
}

/** Running (not a zombie) per /proc. */
const alive = (pid: number): boolean => {
	try {
		return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
	} catch {
		return false
	}
}

describe('serve', () => {
	test('prints one ready line with the address and the docs URL', async () => {
		using dir = tempDir()
		const registry = writeRegistry(join(dir.path, 'model_registry.json'), [entry('small')])
		await using server = await startServer(registry)
		await Bun.sleep(100)
		expect(server.output().trim()).toBe(`imageworks-loader serving ${registry} on ${server.url} (docs: ${server.url}/swagger)`)
	})

	test('SIGTERM during a verify and a burst of selects: in-flight requests finish, new connections are refused, exit 0', async () => {
		using dir = tempDir()
		const registry = registryWithBigModel(dir.path, 1)
		const server = await startServer(registry)
		try {
			const verify = post(`${server.url}/v1/verify`, { name: 'big' })
			await Bun.sleep(150) // the verify is hashing now
			// each select is answered, or its connection closed before the server read its request: never an error status
			const selects = Array.from({ length: 40 }, () =>
				post(`${server.url}/v1/select`, { name: 's' }).then(
					(r) => r.status,
					() => 'not accepted'
				)
			)
			await Bun.sleep(5) // the burst is on the wire
			const signalled = performance.now()
			server.proc.kill('SIGTERM')
			await Bun.sleep(50)
			expect(await refused(`${server.url}/healthz`)).toBe(true)
			const answered = await verify
			expect(answered.status).toBe(200)
			expect(((await answered.json()) as { status: string }).status).toBe('ok')
			const statuses = await Promise.all(selects)
			expect(statuses.filter((s) => s !== 200 && s !== 'not accepted')).toEqual([])
			expect(statuses).toContain(200)
			const code = await server.proc.exited
			expect(code).toBe(0)
			expect(performance.now() - signalled).toBeLessThan(5000)
			expect(server.output()).toContain('SIGTERM: refusing new connections, finishing the requests in flight')
			expect(server.output()).toContain('imageworks-loader: stopped')
			// the verify's record was committed and the database closed cleanly (no WAL left behind)
			const state = statePathFor(registry)
			expect(existsSync(`${state}-wal`)).toBe(false)
			const db = new Database(state, { readonly: true })
			try {
				expect(db.query('SELECT model FROM verified').all()).toEqual([{ model: 'big' }])
			} finally {
				db.close()
			}
		} finally {
			await server.stop()
		}
	}, SLOW)

	test('SIGINT on an idle server stops it at once', async () => {
		using dir = tempDir()
		const registry = writeRegistry(join(dir.path, 'model_registry.json'), [entry('small')])
		const server = await startServer(registry)
		const signalled = performance.now()
		server.proc.kill('SIGINT')
		expect(await server.proc.exited).toBe(0)
		expect(performance.now() - signalled).toBeLessThan(1000)
		expect(server.output()).toContain('SIGINT: refusing new connections')
	})

	test('a verify still running after the grace period is cut: the server still exits 0 within 5 s', async () => {
		using dir = tempDir()
		const registry = registryWithBigModel(dir.path, 12) // far more than 5 s of hashing
		const server = await startServer(registry)
		try {
			const verify = post(`${server.url}/v1/verify`, { name: 'big' }).then(
				(r) => r.status,
				() => 'cut'
			)
			await Bun.sleep(300)
			const hashers = childrenOf(server.proc.pid)
			expect(hashers.length).toBe(1) // the verify's hashing child
			const signalled = performance.now()
			server.proc.kill('SIGTERM')
			expect(await server.proc.exited).toBe(0)
			expect(performance.now() - signalled).toBeLessThan(5000)
			expect(await verify).not.toBe(200)
			// no hashing child outlives the server
			await Bun.sleep(200)
			expect(hashers.filter(alive)).toEqual([])
		} finally {
			await server.stop()
		}
	}, SLOW)
})

describe('health', () => {
	test('exit 0 and "ok" from a running server; exit 1 and a clear message when nothing answers', async () => {
		using dir = tempDir()
		const registry = writeRegistry(join(dir.path, 'model_registry.json'), [entry('small')])
		let url: string
		{
			await using server = await startServer(registry)
			url = server.url
			const ok = await runBinary(['health', '--url', server.url])
			expect(ok).toEqual({ stdout: 'ok\n', stderr: '', exitCode: 0 })
		}
		const down = await runBinary(['health', '--url', url, '--timeout', '1'])
		expect(down.exitCode).toBe(1)
		expect(down.stdout).toBe('')
		expect(down.stderr).toContain(`${url}/healthz is not answering`)
		expect(down.stderr).toContain('Is "imageworks-loader serve" running there?')
	})

	test('exit 1 with the reason when the server is degraded', async () => {
		using dir = tempDir()
		const registry = writeRegistry(join(dir.path, 'model_registry.json'), [entry('small')])
		await using server = await startServer(registry)
		writeFileSync(registry, '[{"name": ')
		const degraded = await runBinary(['health', '--url', server.url])
		expect(degraded.exitCode).toBe(1)
		expect(degraded.stderr).toContain('answered 503 degraded: ')
		expect(degraded.stderr).toContain('malformed JSON')
	})
})
