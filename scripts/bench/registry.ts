/**
 * @module
 * The registry and the CLI: load time against `JSON.parse` alone, how load and `GET /v1/models` grow from
 * 1,000 to 100,000 entries, cold commands against jq, and a cold lock/unlock write on 10,000 entries.
 */
import { join } from 'node:path'
import { parseRegistry } from '../../src/core/registry.ts'
import { startServer } from '../../test/helpers/binary.ts'
import { BINARY, DATA, type Row, fmt, have, median, run, syntheticRegistry, timeIt } from './lib.ts'

/** Warm (JIT-compiled, as in a long-lived server) load time against JSON.parse of the same text. */
async function loadTimes(path: string, rounds: number): Promise<{ load: number; parse: number; mb: number }> {
	const text = await Bun.file(path).text()
	for (let i = 0; i < 3; i++) parseRegistry(text, path)
	const parse: number[] = []
	const load: number[] = []
	for (let i = 0; i < rounds; i++) {
		parse.push(timeIt(() => JSON.parse(text)))
		load.push(timeIt(() => parseRegistry(text, path)))
	}
	return { load: median(load), parse: median(parse), mb: text.length / 1e6 }
}

export async function registryBench(options: { quick: boolean }): Promise<Row[]> {
	const section = 'registry'
	const rows: Row[] = []
	const reg1k = syntheticRegistry(join(DATA, 'reg1k', 'model_registry.json'), 1000)
	const reg10k = syntheticRegistry(join(DATA, 'reg10k', 'model_registry.json'), 10_000)

	// ---- load 10k against JSON.parse
	{
		const t = await loadTimes(reg10k, 9)
		rows.push({
			section,
			name: `load 10,000 entries (${t.mb.toFixed(1)} MB: parse, validate, index)`,
			figure: fmt.ms(t.load),
			baseline: `JSON.parse alone ${fmt.ms(t.parse)}`,
			value: t.load / t.parse,
			goal: '<= 2x JSON.parse',
			met: t.load / t.parse <= 2
		})
	}

	// ---- growth: 1k, 10k, 100k
	const sizes = options.quick ? [1000, 10_000] : [1000, 10_000, 100_000]
	const growth: { n: number; load: number; list: number; mb: number }[] = []
	for (const n of sizes) {
		const path = n === 1000 ? reg1k : n === 10_000 ? reg10k : syntheticRegistry(join(DATA, 'reg100k', 'model_registry.json'), n)
		const t = await loadTimes(path, n >= 100_000 ? 5 : n >= 10_000 ? 9 : 31)
		await using server = await startServer(path)
		const list: number[] = []
		for (let i = 0; i < (n >= 100_000 ? 6 : 21); i++) {
			const started = performance.now()
			await (await fetch(`${server.url}/v1/models`)).arrayBuffer()
			if (i > 0) list.push(performance.now() - started) // the first builds the cached body
		}
		growth.push({ n, load: t.load, list: median(list), mb: t.mb })
	}
	// Each size against the one ten times smaller: linear growth costs the same per entry.
	growth.forEach((g, i) => {
		const previous = growth[i - 1]
		const perEntry = previous ? g.load / g.n / (previous.load / previous.n) : 1
		const listPerEntry = previous ? g.list / g.n / (previous.list / previous.n) : 1
		rows.push({
			section,
			name: `growth: ${g.n.toLocaleString('en-US')} entries (${g.mb.toFixed(1)} MB)`,
			figure: `load ${fmt.ms(g.load)}; GET /v1/models ${fmt.ms(g.list)}`,
			baseline: previous
				? `per entry, against ${previous.n.toLocaleString('en-US')} entries: load ${perEntry.toFixed(2)}x, GET ${listPerEntry.toFixed(2)}x`
				: 'the reference size',
			value: perEntry,
			goal: 'linear: per-entry load cost <= 1.5x the smaller size',
			met: perEntry <= 1.5
		})
	})

	// ---- cold CLI
	const runs = options.quick ? 7 : 21
	run([BINARY, '--registry', reg1k, 'list', '--json'])
	if (have('jq')) {
		const ours: number[] = []
		const jq: number[] = []
		for (let i = 0; i < runs; i++) {
			ours.push(run([BINARY, '--registry', reg1k, 'list', '--json']))
			jq.push(run(['sh', '-c', `jq -c . ${reg1k} > /dev/null`]))
		}
		const ratio = median(jq) / median(ours)
		rows.push({
			section,
			name: 'cold `list --json`, 1,000 entries',
			figure: fmt.ms(median(ours)),
			baseline: `jq -c . ${fmt.ms(median(jq))}`,
			value: ratio,
			goal: 'no slower than jq (>= 1x)',
			met: ratio >= 1
		})
	}
	const help = median(Array.from({ length: runs }, () => run([BINARY, '--help'])))
	rows.push({ section, name: 'cold `--help`', figure: fmt.ms(help), baseline: '-', value: help, goal: '< 30 ms', met: help < 30 })

	// ---- cold lock/unlock on 10k entries
	{
		const name = 'model-004242_(Q4_K_M)'
		run([BINARY, '--registry', reg10k, 'unlock', name]) // the first write after the file was generated validates it in full
		const writes = Array.from({ length: runs }, (_, i) => run([BINARY, '--registry', reg10k, i % 2 ? 'unlock' : 'lock', name]))
		rows.push({
			section,
			name: 'cold `lock`/`unlock`, 10,000 entries (one entry written, the rest byte-identical, fsynced)',
			figure: fmt.ms(median(writes)),
			baseline: '-',
			value: median(writes),
			goal: '< 150 ms',
			met: median(writes) < 150
		})
	}
	return rows
}
