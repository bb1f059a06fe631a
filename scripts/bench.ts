/**
 * Benchmarks of the compiled binary, each figure beside a baseline measured in the same run, with its goal
 * (issue 11). Sections: hashing (against the CPU's own SHA-256 limit, openssl and cat), api (wrk against
 * nginx and a bare Bun.serve), registry (load against JSON.parse, growth to 100k entries, cold commands
 * against jq, cold writes), gateway (added latency, streamed tokens/s and memory against the backend direct).
 *
 *     npm run bench                          # everything, once
 *     bun scripts/bench.ts --repeat 3        # three rounds: the median and the spread of each figure
 *     bun scripts/bench.ts --only api,registry --quick
 *
 * Needs Debian's wrk, nginx-light and jq (`apt-get install -y wrk nginx-light jq`) and about 4.5 GB in
 * .bench-data/ (ignored by git, reused across runs). Ends with a Markdown table for the README.
 */
import { cpus, release, totalmem } from 'node:os'
import { existsSync, mkdirSync } from 'node:fs'
import { apiBench } from './bench/api.ts'
import { gatewayBench } from './bench/gateway.ts'
import { hashingBench } from './bench/hashing.ts'
import { BINARY, DATA, type Row, median } from './bench/lib.ts'
import { registryBench } from './bench/registry.ts'

const argv = process.argv.slice(2)
const option = (name: string) => {
	const at = argv.indexOf(name)
	return at >= 0 ? argv[at + 1] : undefined
}
const quick = argv.includes('--quick')
const repeat = Number(option('--repeat') ?? 1)
const only = new Set((option('--only') ?? 'hashing,api,registry,gateway').split(','))
const sections: Record<string, (o: { quick: boolean }) => Promise<Row[]>> = { hashing: hashingBench, api: apiBench, registry: registryBench, gateway: gatewayBench }
for (const name of only) if (!sections[name]) throw new Error(`unknown section ${name}: choose from ${Object.keys(sections).join(', ')}`)
if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run "npm run build" first`)
mkdirSync(DATA, { recursive: true })

const cpu = cpus()[0]?.model ?? 'unknown CPU'
const machine = `${cpus().length} x ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, Bun ${Bun.version}`
console.log(`imageworks-loader benchmarks, ${new Date().toISOString().slice(0, 10)}: ${machine}${quick ? ' (quick)' : ''}`)

const all = new Map<string, Row[]>()
for (let round = 1; round <= repeat; round++) {
	if (repeat > 1) console.log(`\n-- round ${round} of ${repeat}`)
	for (const [name, bench] of Object.entries(sections)) {
		if (!only.has(name)) continue
		for (const row of await bench({ quick })) {
			const key = `${row.section}\0${row.name}`
			all.set(key, [...(all.get(key) ?? []), row])
			console.log(`${row.met ? 'met   ' : 'MISSED'} ${row.name}: ${row.figure} | ${row.baseline} | ${row.value.toFixed(2)} (goal ${row.goal})`)
		}
	}
}

// One line per figure: the run closest to the median, and the spread of its value over the rounds.
console.log('\n| figure | result | baseline, same run | ratio or value | goal | met |' + (repeat > 1 ? ` spread over ${repeat} runs |` : ''))
console.log('|---|---|---|---|---|---|' + (repeat > 1 ? '---|' : ''))
for (const rows of all.values()) {
	const mid = median(rows.map((r) => r.value))
	const shown = rows.reduce((best, r) => (Math.abs(r.value - mid) < Math.abs(best.value - mid) ? r : best))
	const values = rows.map((r) => r.value)
	const spread = repeat > 1 ? ` ${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)} |` : ''
	const met = rows.every((r) => r.met) ? 'yes' : rows.some((r) => r.met) ? `${rows.filter((r) => r.met).length} of ${rows.length}` : '**no**'
	console.log(`| ${shown.name} | ${shown.figure} | ${shown.baseline} | ${shown.value.toFixed(2)} | ${shown.goal} | ${met} |${spread}`)
}
