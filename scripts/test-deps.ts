// Makes sure what the tests need beyond npm is on this machine: Debian's
// redis-server, which the catalog bridge's end-to-end tests start on a
// loopback port. Installed when missing and we may (root, with apt-get), so
// that `npm test` works on a fresh machine; otherwise says what to install.

import { execFileSync, spawnSync } from "node:child_process";

function has(command: string): boolean {
	return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

if (!has("redis-server")) {
	const canInstall = process.getuid?.() === 0 && has("apt-get");
	if (!canInstall) {
		console.error(
			"test-deps: redis-server is missing; the catalog bridge's tests need it. Install it with\n" +
				"  sudo apt-get install -y redis-server   (Debian, Ubuntu)\n" +
				"and run npm test again.",
		);
		process.exit(1);
	}
	console.log("test-deps: installing redis-server (apt-get), which the catalog bridge's tests start");
	const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
	execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
	execFileSync("apt-get", ["install", "-y", "-qq", "redis-server"], { stdio: "inherit", env });
}
