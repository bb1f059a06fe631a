/**
 * @module
 * The API under wrk on loopback (one wrk thread at 64 connections; the server has the other core),
 * against nginx serving the same bytes as a static file and a bare `Bun.serve` answering a constant of the
 * same size, alternated in the same run; and select latency while the same server hashes 2 GiB.
 */
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer } from '../../test/helpers/binary.ts'
import { BINARY, DATA, MiB, type Row, background, ensureFile, fmt, have, median, percentile, run, syntheticRegistry, waitFor, wrk, wrkPostScript } from './lib.ts'

const CONNECTIONS = 64

/** A bare Bun.serve answering `file`'s bytes to every request: what Bun itself costs. */
function bareBun(file: string, port: number) {
	const script = join(DATA, 'api', 'bare.ts')
	writeFileSync(
		script,
		`const body = await Bun.file(${JSON.stringify(file)}).bytes()\n` +
			`Bun.serve({ port: ${port}, hostname: '127.0.0.1', fetch: () => new Response(body, { headers: { 'content-type': 'application/json' } }) })\n`
	)
	return background([process.execPath, script])
}

/** nginx (one worker) serving `file` at every path. */
function nginx(file: string, port: number) {
	const dir = join(DATA, 'api', 'nginx')
	rmSync(dir, { recursive: true, force: true })
	mkdirSync(dir, { recursive: true })
	copyFileSync(file, join(dir, 'body.json'))
	const conf = join(dir, 'nginx.conf')
	writeFileSync(
		conf,
		`worker_processes 1;\ndaemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents { worker_connections 1024; }\n` +
			`http {\n  access_log off;\n  default_type application/json;\n  server {\n    listen 127.0.0.1:${port};\n` +
			`    root ${dir};\n    location / { try_files /body.json =404; }\n  }\n}\n`
	)
	return background(['nginx', '-c', conf, '-p', dir])
}

/** Alternate wrk runs over the targets `rounds` times; the median requests/s and p99 of each. */
function alternate(targets: Record<string, string>, options: { rounds: number; seconds: number; script?: string }) {
	const runs: Record<string, { rps: number[]; p99: number[] }> = {}
	for (let round = 0; round < options.rounds; round++) {
		for (const [label, url] of Object.entries(targets)) {
			const result = wrk(url, { connections: CONNECTIONS, seconds: options.seconds, script: options.script })
			const r = (runs[label] ??= { rps: [], p99: [] })
			r.rps.push(result.rps)
			r.p99.push(result.p99)
		}
	}
	return Object.fromEntries(Object.entries(runs).map(([label, r]) => [label, { rps: median(r.rps), p99: median(r.p99) }]))
}

export async function apiBench(options: { quick: boolean }): Promise<Row[]> {
	const section = 'api'
	if (!have('wrk') || !have('nginx')) {
		throw new Error('the API benchmarks need wrk and nginx from Debian: apt-get install -y wrk nginx-light')
	}
	const rows: Row[] = []
	const dir = join(DATA, 'api')
	mkdirSync(dir, { recursive: true })
	const seconds = options.quick ? 2 : 5
	const rounds = options.quick ? 1 : 3
	const registry = syntheticRegistry(join(DATA, 'reg1k', 'model_registry.json'), 1000)
	await using server = await startServer(registry)

	// ---- GET /v1/models on 1,000 entries, against nginx serving the same bytes
	const modelsFile = join(dir, 'models.json')
	writeFileSync(modelsFile, new Uint8Array(await (await fetch(`${server.url}/v1/models`)).arrayBuffer()))
	{
		using _nginx = nginx(modelsFile, 18431)
		using _bare = bareBun(modelsFile, 18432)
		await waitFor('http://127.0.0.1:18431/v1/models')
		await waitFor('http://127.0.0.1:18432/')
		const got = alternate(
			{ ours: `${server.url}/v1/models`, nginx: 'http://127.0.0.1:18431/v1/models', bun: 'http://127.0.0.1:18432/v1/models' },
			{ rounds, seconds }
		)
		const ours = got['ours'] as { rps: number; p99: number }
		const ratio = ours.rps / (got['nginx'] as { rps: number }).rps
		rows.push({
			section,
			name: `GET /v1/models, 1,000 entries (${(Bun.file(modelsFile).size / 1024).toFixed(0)} KB), ${CONNECTIONS} connections`,
			figure: fmt.rps(ours.rps),
			baseline: `nginx, same bytes as a static file: ${fmt.rps((got['nginx'] as { rps: number }).rps)}; bare Bun.serve: ${fmt.rps((got['bun'] as { rps: number }).rps)}`,
			value: ratio,
			goal: '>= 0.8x nginx',
			met: ratio >= 0.8
		})
		rows.push({
			section,
			name: `GET /v1/models p99 at ${CONNECTIONS} connections`,
			figure: fmt.ms(ours.p99),
			baseline: `nginx ${fmt.ms((got['nginx'] as { p99: number }).p99)}`,
			value: ours.p99,
			goal: '< 10 ms',
			met: ours.p99 < 10
		})
	}

	// ---- POST /v1/select against a bare Bun.serve answering a constant JSON of the same size
	{
		const body = JSON.stringify({ name: 'model-000042_(Q4_K_M)' })
		const res = await fetch(`${server.url}/v1/select`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
		if (res.status !== 200) throw new Error(`select: ${res.status} ${await res.text()}`)
		const selection = join(dir, 'selection.json')
		writeFileSync(selection, new Uint8Array(await res.arrayBuffer()))
		using _bare = bareBun(selection, 18433)
		await waitFor('http://127.0.0.1:18433/')
		const script = wrkPostScript(join(dir, 'select.lua'), body)
		const got = alternate({ ours: `${server.url}/v1/select`, bun: 'http://127.0.0.1:18433/v1/select' }, { rounds, seconds, script })
		const ours = got['ours'] as { rps: number; p99: number }
		const bare = got['bun'] as { rps: number; p99: number }
		rows.push({
			section,
			name: `POST /v1/select, ${CONNECTIONS} connections`,
			figure: `${fmt.rps(ours.rps)}, p99 ${fmt.ms(ours.p99)}`,
			baseline: `bare Bun.serve, constant ${Bun.file(selection).size}-byte JSON: ${fmt.rps(bare.rps)}`,
			value: ours.rps / bare.rps,
			goal: '>= 0.5x bare Bun.serve',
			met: ours.rps / bare.rps >= 0.5
		})
	}
	await server.stop()

	// ---- select on a locked 50-file model while the same server verifies 2 GiB
	{
		const lockedDir = join(dir, 'locked')
		for (let i = 0; i < 50; i++) ensureFile(join(lockedDir, `part-${String(i).padStart(2, '0')}.bin`), 64 * 1024)
		const bigSize = (options.quick ? 256 : 2048) * MiB
		const big = join(DATA, options.quick ? 'hash-quick' : 'hash', 'one')
		ensureFile(join(big, 'model.bin'), bigSize)
		const reg = join(dir, 'locked_registry.json')
		writeFileSync(
			reg,
			JSON.stringify([
				{ name: 'locked', backend: 'vllm', backend_config: { model_path: lockedDir } },
				{ name: 'big', backend: 'vllm', backend_config: { model_path: big } }
			])
		)
		run([BINARY, '--registry', reg, 'lock', 'locked', '--set-expected'])
		run(['cat', join(big, 'model.bin')]) // warm: this measures the CPU, not the disk
		await using locked = await startServer(reg)
		const select = async () => {
			const started = performance.now()
			const res = await fetch(`${locked.url}/v1/select`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"locked"}' })
			if (res.status !== 200) throw new Error(`select of the locked model: ${res.status} ${await res.text()}`)
			await res.arrayBuffer()
			return performance.now() - started
		}
		for (let i = 0; i < 300; i++) await select() // warm the JIT and the connection
		const idle: number[] = []
		for (let i = 0; i < 1000; i++) idle.push(await select())
		const busy: number[] = []
		let verifying = true
		const verify = fetch(`${locked.url}/v1/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"big"}' }).then(async (res) => {
			verifying = false
			if (res.status !== 200) throw new Error(`verify: ${res.status} ${await res.text()}`)
		})
		await Bun.sleep(50) // let the hashing start
		while (verifying) busy.push(await select())
		await verify
		const p50 = percentile(busy, 50)
		const p99 = percentile(busy, 99)
		rows.push({
			section,
			name: `select a locked 50-file model while the same server verifies ${bigSize / MiB / 1024} GiB`,
			figure: `p50 ${fmt.ms(p50)}, p99 ${fmt.ms(p99)} (${busy.length} selects, one at a time)`,
			baseline: `idle server: p50 ${fmt.ms(percentile(idle, 50))}, p99 ${fmt.ms(percentile(idle, 99))}`,
			value: p99,
			goal: 'p50 < 1 ms, p99 < 5 ms',
			met: p50 < 1 && p99 < 5
		})
	}
	return rows
}
