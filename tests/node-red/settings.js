// Node-RED settings for tests/integration/test_node_red.py: headless (no
// editor, no admin API), loopback only, nothing fetched from the network.
// The test passes the port in NODE_RED_TEST_PORT and writes flows.json
// (deploy/node-red/flows.json with the test broker's port) into the userDir.
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: Number(process.env.NODE_RED_TEST_PORT || 1880),
    flowFile: "flows.json",
    flowFilePretty: true,
    // No credentials in the test flow; never prompt for a key.
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: false,
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },
    externalModules: {
        autoInstall: false,
        palette: { allowInstall: false },
        modules: { allowInstall: false },
    },
    functionExternalModules: false,
    logging: { console: { level: "info", metrics: false, audit: false } },
};
