/**
 * Python test tooling for the real model server: the virtual environment test/.venv with the pinned
 * packages of test/backend/requirements.txt, and Python children that never outlive the tests.
 *
 * `ensureVenv()` makes the venv once and reuses it while the requirements file is unchanged: the file's
 * SHA-256 is kept in test/.venv/.requirements-sha256, written only after a successful install. A missing
 * venv or a different hash means `python3 -m venv --clear` and `pip install -r` again. The first install
 * compiles llama.cpp (llama-cpp-python is a source distribution on PyPI): about 2 minutes on 2 cores;
 * pip caches the built wheel, so later installs on the same machine take seconds.
 *
 * Concurrency: the promise is memoised, so test files of one bun test process share one set-up; and
 * processes serialise on an exclusive flock of test/.fixtures/venv.lock (held by a small Python child
 * until its standard input closes, so the kernel releases it when the holder dies, even by SIGKILL).
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { ROOT } from './paths.ts'

export const BACKEND_DIR = join(ROOT, 'test', 'backend')
export const REQUIREMENTS = join(BACKEND_DIR, 'requirements.txt')
export const VENV = join(ROOT, 'test', '.venv')
/** Generated files of the backend tests (git-ignored): the GGUF fixtures and the venv lock. */
export const FIXTURES = join(ROOT, 'test', '.fixtures')
const HASH_FILE = join(VENV, '.requirements-sha256')
const LOCK_FILE = join(FIXTURES, 'venv.lock')
const TETHER = join(BACKEND_DIR, 'tether.py')
/** The interpreter that makes the venv (and holds the lock): `$PYTHON3` or `python3` on PATH. */
const SYSTEM_PYTHON = process.env['PYTHON3'] ?? 'python3'

/** The venv's interpreter (which may not exist yet). */
export const VENV_PYTHON = join(VENV, 'bin', 'python')

/** SHA-256 (hex) of a file's bytes. */
export function sha256File(path: string): string {
	return new Bun.CryptoHasher('sha256').update(readFileSync(path)).digest('hex')
}

function venvIsCurrent(): boolean {
	return existsSync(VENV_PYTHON) && existsSync(HASH_FILE) && readFileSync(HASH_FILE, 'utf8').trim() === sha256File(REQUIREMENTS)
}

let venvReady: Promise<string> | undefined

/**
 * The path of test/.venv/bin/python, with the requirements installed. Installs on first use (or after
 * requirements.txt changed); callers need a hook timeout of several minutes for that case. A failure is
 * memoised too, so the other test files fail at once instead of compiling again.
 */
export function ensureVenv(): Promise<string> {
	venvReady ??= venvIsCurrent() ? Promise.resolve(VENV_PYTHON) : withFileLock(LOCK_FILE, installVenv)
	return venvReady
}

async function installVenv(): Promise<string> {
	if (venvIsCurrent()) return VENV_PYTHON // another process installed it while we waited for the lock
	const started = performance.now()
	const log = join(VENV, 'install.log')
	console.error(`test/.venv: installing test/backend/requirements.txt (the first time compiles llama.cpp, a few minutes); log: ${log}`)
	rmSync(HASH_FILE, { force: true }) // from here until the end, the venv does not count as installed
	await run([SYSTEM_PYTHON, '-m', 'venv', '--clear', VENV])
	const cores = String(availableParallelism())
	const pip = spawnTethered([VENV_PYTHON, '-m', 'pip', 'install', '--no-input', '--progress-bar', 'off', '-r', REQUIREMENTS], {
		log,
		env: {
			...process.env,
			CMAKE_BUILD_PARALLEL_LEVEL: process.env['CMAKE_BUILD_PARALLEL_LEVEL'] ?? cores,
			PIP_DISABLE_PIP_VERSION_CHECK: '1'
		}
	})
	const code = await pip.exited
	await pip.stop()
	if (code !== 0) throw new Error(`pip install -r ${REQUIREMENTS} failed (exit ${code}):\n${pip.logTail(4000)}`)
	writeFileSync(`${HASH_FILE}.tmp`, `${sha256File(REQUIREMENTS)}\n`)
	renameSync(`${HASH_FILE}.tmp`, HASH_FILE)
	console.error(`test/.venv: installed in ${((performance.now() - started) / 1000).toFixed(1)} s`)
	return VENV_PYTHON
}

// ---------------------------------------------------------------- cross-process lock

const LOCK_HOLDER = `
import fcntl, sys
f = open(sys.argv[1], "a")
try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("waiting", flush=True)
    fcntl.flock(f, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()  # hold the lock until our parent closes the pipe (or dies)
`

/**
 * Run `work` while holding an exclusive flock on `path`. A Python child takes the lock (blocking, so no
 * polling) and keeps it until we close its standard input; if this process dies, the pipe closes, the
 * child exits and the kernel drops the lock.
 */
export async function withFileLock<T>(path: string, work: () => Promise<T>): Promise<T> {
	mkdirSync(join(path, '..'), { recursive: true })
	const holder = Bun.spawn([SYSTEM_PYTHON, '-c', LOCK_HOLDER, path], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' })
	const reader = (holder.stdout as ReadableStream<Uint8Array>).getReader()
	const decoder = new TextDecoder()
	let said = ''
	try {
		while (!said.includes('locked\n')) {
			const { value, done } = await reader.read()
			if (done) throw new Error(`could not lock ${path} (exit ${await holder.exited}):\n${await new Response(holder.stderr).text()}`)
			said += decoder.decode(value, { stream: true })
			if (said === 'waiting\n') console.error(`waiting for another process that holds ${path}`)
		}
		return await work()
	} finally {
		holder.stdin.end()
		await holder.exited
	}
}

// ---------------------------------------------------------------- children that die with the tests

/** A command running in its own process group under test/backend/tether.py, output to a log file. */
export interface TetheredProcess {
	/** The tether's pid, which is also the process group id. */
	pid: number
	/** Resolves with the command's exit code. */
	exited: Promise<number>
	/** The last `chars` characters of the log. */
	logTail(chars?: number): string
	/** SIGTERM to the group, SIGKILL after `graceMs`; resolves once no process of the group is left. */
	stop(graceMs?: number): Promise<void>
}

/** Process groups still running, SIGKILLed on process exit (plain `bun` scripts; bun test never emits 'exit'). */
const liveGroups = new Set<number>()
process.on('exit', () => {
	for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL')
})

function killGroup(pgid: number, signal: NodeJS.Signals): void {
	try {
		process.kill(-pgid, signal)
	} catch {
		// ESRCH: the group is already gone
	}
}

/**
 * Whether any process of group `pgid` is still running (zombies do not count: `kill(pid, 0)` succeeds on
 * them, so this reads /proc/PID/stat: state and process group).
 */
export function processGroupAlive(pgid: number): boolean {
	for (const entry of readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) continue
		let stat: string
		try {
			stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
		} catch {
			continue // exited while we looked
		}
		const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // after "pid (comm) ": state ppid pgrp ...
		if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true
	}
	return false
}

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
	const deadline = Date.now() + timeoutMs
	while (!condition()) {
		if (Date.now() > deadline) return false
		await Bun.sleep(20)
	}
	return true
}

/**
 * Start `argv` under test/backend/tether.py in a new process group (setsid), stdin a pipe only the
 * tether reads, stdout and stderr appended to `log` (never inherited: a leaked child holding the test
 * runner's stdio keeps a CI pipe open). When this process ends in any way, the pipe closes and the
 * tether SIGKILLs the group.
 */
export function spawnTethered(argv: string[], options: { log: string; env: Record<string, string | undefined>; cwd?: string }): TetheredProcess {
	const fd = openSync(options.log, 'a')
	// The venv's interpreter (made before anything is tethered), never a shim: the tether must be our child.
	const proc = Bun.spawn([VENV_PYTHON, TETHER, ...argv], {
		cwd: options.cwd ?? ROOT,
		env: options.env,
		detached: true,
		stdin: 'pipe',
		stdout: fd,
		stderr: fd
	})
	closeSync(fd)
	const pid = proc.pid
	liveGroups.add(pid)
	let stopping: Promise<void> | undefined
	return {
		pid,
		exited: proc.exited,
		logTail(chars = 3000) {
			const text = existsSync(options.log) ? readFileSync(options.log, 'utf8') : ''
			return text.length > chars ? `...${text.slice(-chars)}` : text
		},
		stop(graceMs = 5000) {
			stopping ??= (async () => {
				if (processGroupAlive(pid)) {
					killGroup(pid, 'SIGTERM')
					if (!(await until(() => !processGroupAlive(pid), graceMs))) {
						killGroup(pid, 'SIGKILL')
						await until(() => !processGroupAlive(pid), 5000)
					}
				}
				await proc.exited
				proc.stdin.end()
				liveGroups.delete(pid)
			})()
			return stopping
		}
	}
}

/** Run a short command to completion (stdout and stderr piped); throws with its output if it fails. */
export async function run(argv: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Promise<string> {
	const proc = Bun.spawn(argv, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
	const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
	if (code !== 0) throw new Error(`${argv.join(' ')} failed (exit ${code}):\n${stdout}${stderr}`)
	return stdout
}
