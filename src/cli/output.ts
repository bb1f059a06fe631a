/**
 * @module
 * Rendering for people (aligned tables, a progress bar on a terminal only) and for scripts (`--json`).
 * Tables and results go to stdout; errors and progress to stderr. `NO_COLOR` turns colour off, and so
 * does a pipe.
 */
import { writeSync } from 'node:fs'
import { isatty } from 'node:tty'
import { CANONICAL } from '../core/capabilities.ts'
import type { BenchResult, LockResult, MetricsSummary, ModelSummary, ProbeResult, Selection, VerifyResult } from '../core/schema.ts'

/** Where a command writes, and what kind of terminal it has. Injected so tests can capture it. */
export interface Io {
	stdout(text: string): void
	stderr(text: string): void
	/** Whether stderr is a terminal (progress bars and a red "error" only there). */
	stderrIsTty: boolean
	/** Whether stdout is a terminal (bold table headers only there; absent means no). */
	stdoutIsTty?: boolean
	env: Record<string, string | undefined>
}

/**
 * The process's own stdout and stderr, written with synchronous writes to file descriptors 1 and 2:
 * `process.stdout` loads Node's whole stream stack, which was 10 ms of every command's 20 (measured).
 */
export function systemIo(): Io {
	return {
		stdout: (text) => writeAll(1, text),
		stderr: (text) => writeAll(2, text),
		stderrIsTty: isatty(2),
		stdoutIsTty: isatty(1),
		env: process.env
	}
}

/** All of `text` to `fd`, waiting out a full non-blocking pipe; a reader that left (EPIPE) ends output. */
function writeAll(fd: number, text: string): void {
	const bytes = Buffer.from(text, 'utf8')
	let at = 0
	while (at < bytes.length) {
		try {
			at += writeSync(fd, bytes, at, bytes.length - at)
		} catch (error) {
			const code = (error as NodeJS.ErrnoException).code
			if (code === 'EAGAIN') Bun.sleepSync(1)
			else if (code === 'EPIPE') return
			else throw error
		}
	}
}

export class Output {
	/** Colour on stderr, and on stdout: each only when that stream is a terminal. */
	readonly #colour: boolean
	readonly #colourOut: boolean
	constructor(readonly io: Io) {
		const wanted = !io.env['NO_COLOR'] && io.env['TERM'] !== 'dumb'
		this.#colour = io.stderrIsTty && wanted
		this.#colourOut = io.stdoutIsTty === true && wanted
	}

	#bold(text: string): string {
		return this.#colourOut ? `\x1b[1m${text}\x1b[22m` : text
	}

	json(data: unknown): void {
		this.io.stdout(JSON.stringify(data, null, 2) + '\n')
	}

	/** `result` as JSON for scripts (`--json`), or rendered for people. */
	emit<T>(result: T, asJson: boolean | undefined, human: (result: T) => void): void {
		if (asJson) this.json(result)
		else human(result)
	}

	line(text = ''): void {
		this.io.stdout(text + '\n')
	}

	/** A line for the operator on stderr (what a long-running command is doing), never a result. */
	note(message: string): void {
		this.io.stderr(`imageworks-loader: ${message}\n`)
	}

	error(message: string): void {
		this.io.stderr(`${this.#colour ? '\x1b[31merror\x1b[39m' : 'error'}: ${message}\n`)
	}

	/** Columns padded to their widest cell, two spaces apart; no trailing spaces. */
	table(header: string[], rows: string[][]): void {
		const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
		const render = (cells: string[]) =>
			cells
				.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
				.join('  ')
				.trimEnd()
		this.line(this.#bold(render(header)))
		for (const row of rows) this.line(render(row))
	}

	/** Label/value pairs, labels aligned. */
	pairs(rows: [string, string][]): void {
		const width = Math.max(...rows.map(([k]) => k.length))
		for (const [k, v] of rows) this.line(`${this.#bold(k.padEnd(width))}  ${v}`)
	}

	models(models: ModelSummary[], role: string | undefined): void {
		if (!models.length) {
			this.line(role ? `No models with role ${JSON.stringify(role)}.` : 'No models in the registry.')
			return
		}
		this.table(
			['NAME', 'BACKEND', 'CAPABILITIES', 'ROLES', 'LOCKED', 'VISION'],
			models.map((m) => [
				m.name + (m.deprecated ? ' (deprecated)' : ''),
				m.backend,
				capabilityList(m.capabilities),
				m.roles.join(',') || '-',
				m.locked ? 'yes' : 'no',
				m.vision_ok === true ? 'verified' : m.vision_ok === false ? 'no' : '-'
			])
		)
	}

	selection(s: Selection): void {
		const rows: [string, string][] = [
			['name', s.name],
			['endpoint', s.endpoint],
			['backend', s.backend],
			['internal_model_id', s.internal_model_id],
			['capabilities', capabilityList(s.capabilities)],
			['locked', s.locked ? 'yes' : 'no']
		]
		if (s.deprecated) rows.push(['deprecated', 'yes'])
		this.pairs(rows)
	}

	verified(r: VerifyResult): void {
		this.line(`ok  ${r.name}  ${r.files} files, ${formatBytes(r.bytes)} in ${r.seconds.toFixed(2)} s`)
		this.line(`aggregate_sha256  ${r.aggregate_sha256}`)
		const c = r.changes
		if (c && c.changed.length + c.added.length + c.removed.length) {
			for (const [label, files] of [['changed', c.changed], ['added', c.added], ['removed', c.removed]] as const) {
				if (files.length) this.line(`${label}: ${files.join(', ')}`)
			}
		}
		if (r.locked) this.line('lock: the files match the lock')
	}

	lockResult(r: LockResult): void {
		const state = r.locked ? 'locked' : 'unlocked'
		this.line(`${r.name}: ${state}${r.changed ? '' : ' (no change)'}`)
		this.line(`expected_aggregate_sha256  ${r.expected_aggregate_sha256 ?? '-'}`)
	}

	probe(r: ProbeResult): void {
		const mark = { verified: 'VERIFIED', not_supported: 'NOT SUPPORTED', unknown: 'UNKNOWN' }[r.outcome]
		this.line(`${r.name}: ${mark} (${r.probe_version}, ${Math.round(r.latency_ms)} ms)`)
		r.rounds.forEach((round, i) => {
			this.line(`  round ${i + 1}: ${round.shape} in ${round.colour.padEnd(6)} -> ${JSON.stringify(round.answer.slice(0, 60))} [${round.passed ? 'pass' : 'fail'}]`)
		})
		if (r.description !== null) this.line(`  description: ${r.description}`)
		if (r.error) this.line(`  ${r.error}`)
		if (r.outcome === 'unknown') this.line('  Nothing was recorded in the registry (only conclusive outcomes are).')
	}

	bench(r: BenchResult): void {
		this.table(
			['#', 'TTFT ms', 'TOKENS', 'DURATION ms', 'TOK/S'],
			r.samples.map((s, i) => {
				const decode = s.duration_ms - s.ttft_ms
				const rate = s.tokens_generated >= 2 && decode > 0 ? ((s.tokens_generated - 1) / (decode / 1000)).toFixed(1) : '-'
				return [String(i + 1), s.ttft_ms.toFixed(1), String(s.tokens_generated), s.duration_ms.toFixed(1), rate]
			})
		)
		this.metrics([r.summary])
	}

	metrics(summaries: MetricsSummary[]): void {
		const f = (x: number | null) => (x === null ? '-' : x.toFixed(1))
		this.table(
			['NAME', 'SAMPLES', 'TTFT AVG ms', 'TTFT P50 ms', 'TTFT P95 ms', 'TOK/S AVG', 'LAST SAMPLE'],
			summaries.map((s) => [
				s.name,
				String(s.rolling_samples),
				f(s.ttft_ms_avg),
				f(s.ttft_ms_p50),
				f(s.ttft_ms_p95),
				f(s.throughput_toks_per_s_avg),
				s.last_sample?.at ?? '-'
			])
		)
	}

	/** A count of finished requests on stderr, on a terminal only. */
	countProgress(label: string, total: number): { onDone?: () => void; done: () => void } {
		if (!this.io.stderrIsTty) return { done: () => undefined }
		let finished = 0
		this.io.stderr(`\r${label} 0/${total}\x1b[K`)
		return {
			onDone: () => {
				finished++
				this.io.stderr(`\r${label} ${finished}/${total}\x1b[K`)
			},
			done: () => {
				if (finished >= 0) this.io.stderr('\r\x1b[K')
				finished = -1
			}
		}
	}

	/**
	 * A progress bar on stderr while hashing, on a terminal only (nothing on a pipe). Returns the hooks
	 * to hand to the core and a function that clears the bar.
	 */
	hashProgress(label: string): { onStart?: (files: number, bytes: number) => void; onProgress?: (bytes: number) => void; done: () => void } {
		if (!this.io.stderrIsTty) return { done: () => undefined }
		let total = 0
		let seen = 0
		let last = 0
		const started = performance.now()
		const draw = (force = false) => {
			const now = performance.now()
			if (!force && now - last < 100) return
			last = now
			const fraction = total ? Math.min(1, seen / total) : 0
			const width = 30
			const filled = Math.round(fraction * width)
			const rate = seen / Math.max(0.001, (now - started) / 1000)
			this.io.stderr(
				`\r${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ` +
					`${formatBytes(seen)}/${formatBytes(total)} ${formatBytes(rate)}/s\x1b[K`
			)
		}
		return {
			onStart: (_files, bytes) => {
				total = bytes
				draw(true)
			},
			onProgress: (bytes) => {
				seen += bytes
				draw()
			},
			done: () => {
				if (last) this.io.stderr('\r\x1b[K')
				last = 0 // once: the bar is gone
			}
		}
	}
}

/** Run `work` while a progress display shows; it is cleared before the result prints, and on failure. */
export async function showingProgress<T>(progress: { done(): void }, work: () => Promise<T>): Promise<T> {
	try {
		return await work()
	} finally {
		progress.done()
	}
}

function capabilityList(caps: Record<string, boolean>): string {
	return CANONICAL.filter((c) => caps[c]).join(',')
}

export function formatBytes(n: number): string {
	const units = ['B', 'KB', 'MB', 'GB', 'TB']
	let value = n
	let unit = 0
	while (value >= 1000 && unit < units.length - 1) {
		value /= 1000
		unit++
	}
	return `${unit ? value.toFixed(1) : value.toFixed(0)} ${units[unit]}`
}
