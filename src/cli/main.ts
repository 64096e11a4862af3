#!/usr/bin/env node
// The `ferry` executable: one commander program; each area registers its own subcommands.
import { Command } from 'commander';
import { EXIT_USAGE } from './run-action.js';
import { registerRelayCommands } from './relay.js';
import { registerConnectorCommands } from './connector.js';
import { registerDemoCommand } from './demo.js';
import { registerProxyCommands } from './proxy.js';
import { registerPacCommands } from './pac.js';
import { registerDoctorCommand } from './doctor.js';
import { registerReleaseCommands } from './release.js';
import { registerUpdaterCommands } from './updater.js';

const program = new Command('ferry')
  .description('Ferry: publish private web apps through an outbound-only connector that works with corporate proxies')
  .version('0.1.0')
  // Root options only before the subcommand, so `ferry release publish --version 1.2.0` reaches publish.
  .enablePositionalOptions()
  .showHelpAfterError()
  .exitOverride((err) => {
    // commander's own usage errors (unknown option, missing argument) are exit code 2 by contract.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
    process.exit(EXIT_USAGE);
  });

// Registrations (one line per area, each area in its own file):
registerRelayCommands(program);
registerConnectorCommands(program);
registerDemoCommand(program);
registerProxyCommands(program);
registerPacCommands(program);
registerDoctorCommand(program);
registerReleaseCommands(program);
registerUpdaterCommands(program);

await program.parseAsync(process.argv);
