package org.searchidx.testcluster;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.StringJoiner;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.service.ClusterService;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;
import org.opensearch.transport.TransportService;

/**
 * Real OpenSearch nodes in one JVM, forming one cluster on free loopback ports: the test cluster
 * of searchidx's OpenSearch tests. The server's modules are jars on the classpath, loaded as
 * classpath plugins the way OpenSearch's own test framework does, so nothing is downloaded
 * beyond Maven Central.
 *
 * <p>Usage: {@code java -cp testcluster.jar:lib/* org.searchidx.testcluster.TestCluster
 * --nodes N --home DIR}. Each node keeps its data under {@code DIR/node-K}. Standard output carries
 * only this protocol (OpenSearch logs go to standard error):
 *
 * <ul>
 *   <li>{@code ready node-1=HTTP_PORT node-2=HTTP_PORT ...} once every node has joined;
 *   <li>{@code stop K} (or {@code stop node-K}) on standard input closes that node and answers
 *       {@code stopped node-K} once the others have seen it leave, for fault tests;
 *   <li>{@code start K} starts a stopped node again on its old data and answers
 *       {@code started node-K=HTTP_PORT} once it has rejoined;
 *   <li>{@code error MESSAGE} for a command that cannot be done; {@code failed MESSAGE} and exit
 *       status 1 if the cluster cannot start.
 * </ul>
 *
 * The JVM ends when standard input closes (the test process that owns the pipe ended, however it
 * ended) or on SIGTERM, and closes its nodes first.
 */
public final class TestCluster {

    private static final String CLUSTER_NAME = "searchidx-test";

    private static final List<Class<? extends Plugin>> MODULES = List.of(
        Netty4Plugin.class,
        CommonAnalysisPlugin.class,
        PainlessPlugin.class,
        MapperExtrasPlugin.class
    );

    /** Generous: two cores are shared by several test runs at once. */
    private static final long WAIT_MILLIS = TimeUnit.MINUTES.toMillis(3);

    private final Path home;
    private final int size;
    /**
     * The nodes running now, by name. Only the main thread starts and stops nodes; the shutdown
     * hook closes them from its own thread, without waiting for a node that is still starting
     * (the JVM halts right after).
     */
    private final Map<String, Node> running = new ConcurrentSkipListMap<>();

    private TestCluster(Path home, int size) {
        this.home = home;
        this.size = size;
    }

    public static void main(String[] args) throws Exception {
        int size = 1;
        Path home = null;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--nodes" -> size = args[i + 1].matches("\\d{1,2}") ? Integer.parseInt(args[i + 1]) : 0;
                case "--home" -> home = Path.of(args[i + 1]).toAbsolutePath();
                default -> usage("unknown option " + args[i]);
            }
        }
        if (home == null || size < 1 || args.length % 2 != 0) {
            usage("--home DIR is required and --nodes must be a number from 1 to 99");
        }
        TestCluster cluster = new TestCluster(home, size);
        Runtime.getRuntime().addShutdownHook(new Thread(cluster::closeAll, "testcluster-shutdown"));
        BlockingQueue<String> commands = readCommands();
        try {
            for (int k = 1; k <= size; k++) {
                cluster.startNode(name(k), k == 1);
            }
            cluster.awaitFormed();
        } catch (Exception e) {
            reply("failed " + oneLine(e));
            System.exit(1);
        }
        reply("ready " + cluster.httpPorts());
        while (true) {
            cluster.serve(commands.take());
        }
    }

    /**
     * Standard input's lines, read from the start on a thread of their own: when it closes the
     * JVM exits at once, even in the middle of starting the nodes (the shutdown hook closes those
     * that run), so an owner that died never leaves a cluster behind for long.
     */
    private static BlockingQueue<String> readCommands() {
        BlockingQueue<String> commands = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                for (String line = in.readLine(); line != null; line = in.readLine()) {
                    commands.add(line);
                }
            } catch (IOException e) {
                System.err.println("TestCluster: reading standard input: " + oneLine(e));
            }
            System.exit(0);
        }, "testcluster-stdin");
        reader.setDaemon(true);
        reader.start();
        return commands;
    }

    private static void usage(String problem) {
        System.err.println("TestCluster: " + problem + "\nusage: TestCluster --nodes N --home DIR");
        System.exit(2);
    }

    private static String name(int k) {
        return "node-" + k;
    }

    private static synchronized void reply(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static String oneLine(Throwable e) {
        return (e.getClass().getSimpleName() + ": " + e.getMessage()).replace('\n', ' ');
    }

    /** Does one command and says how it went. */
    private void serve(String line) {
        String[] words = line.trim().split("\\s+");
        if (words.length != 2 || !(words[0].equals("stop") || words[0].equals("start"))) {
            reply("error unknown command '" + line.trim() + "': say 'stop K' or 'start K'");
            return;
        }
        String node = words[1].startsWith("node-") ? words[1] : "node-" + words[1];
        try {
            if (words[0].equals("stop")) {
                stopNode(node);
                reply("stopped " + node);
            } else {
                startNode(node, false);
                awaitFormed();
                reply("started " + node + "=" + httpPort(running.get(node)));
            }
        } catch (Exception e) {
            reply("error " + words[0] + " " + node + ": " + oneLine(e));
        }
    }

    private void startNode(String name, boolean bootstrap) throws Exception {
        if (running.containsKey(name)) {
            throw new IllegalStateException(name + " is already running");
        }
        if (!name.matches("node-\\d{1,2}") || Integer.parseInt(name.substring(5)) > size) {
            throw new IllegalArgumentException("no such node; the cluster has node-1 to node-" + size);
        }
        Path nodeHome = home.resolve(name);
        Settings.Builder settings = Settings.builder()
            .put("cluster.name", CLUSTER_NAME)
            .put("node.name", name)
            .put("path.home", nodeHome.toString())
            .put("path.data", nodeHome.resolve("data").toString())
            .put("path.logs", nodeHome.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", "0") // the system picks a free port; printed when ready
            .put("transport.port", "0")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            // Small footprint: nodes share one JVM, one small heap and two cores.
            .put("node.processors", 1)
            .put("indices.breaker.total.use_real_memory", false) // the heap is every node's
            .put("cluster.routing.allocation.disk.threshold_enabled", false); // a full /tmp is not the test
        if (size == 1) {
            settings.put("discovery.type", "single-node");
        } else {
            settings.putList("discovery.seed_hosts", transportAddresses());
            if (bootstrap) {
                // Node 1 bootstraps alone; the voting configuration grows to 3 as the others join.
                settings.put("cluster.initial_cluster_manager_nodes", name);
            }
        }
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings.build(), Map.of(), null, () -> name);
        Node node = new ClusterNode(environment, MODULES);
        node.start();
        running.put(name, node);
    }

    private void stopNode(String name) throws Exception {
        Node node = running.get(name);
        if (node == null) {
            throw new IllegalStateException(name + " is not running");
        }
        if (running.size() == 1) {
            throw new IllegalStateException(name + " is the last node running; close stdin to end");
        }
        running.remove(name);
        node.close();
        node.awaitClose(30, TimeUnit.SECONDS);
        awaitFormed();
    }

    private void closeAll() {
        for (Node node : running.values()) {
            try {
                node.close();
                node.awaitClose(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                System.err.println("TestCluster: closing a node: " + oneLine(e));
            }
        }
        running.clear();
    }

    /**
     * Waits until every running node is in one cluster with an elected manager and, for 3 nodes
     * or more, a voting configuration of 3: only then can one node be lost without losing quorum.
     */
    private void awaitFormed() throws InterruptedException {
        int votersWanted = running.size() >= 3 ? 3 : 1;
        Predicate<ClusterState> formed = state ->
            state.nodes().getClusterManagerNodeId() != null
                && state.nodes().getSize() == running.size()
                && state.getLastCommittedConfiguration().getNodeIds().size() >= votersWanted;
        long deadline = System.currentTimeMillis() + WAIT_MILLIS;
        while (!running.values().stream().allMatch(node -> formed.test(state(node)))) {
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException("the nodes did not form one cluster in "
                    + TimeUnit.MILLISECONDS.toSeconds(WAIT_MILLIS) + " s; see the log on stderr");
            }
            Thread.sleep(100);
        }
    }

    private static ClusterState state(Node node) {
        return node.injector().getInstance(ClusterService.class).state();
    }

    private List<String> transportAddresses() {
        List<String> addresses = new ArrayList<>();
        for (Node node : running.values()) {
            TransportService transport = node.injector().getInstance(TransportService.class);
            addresses.add(transport.boundAddress().publishAddress().toString());
        }
        return addresses;
    }

    private String httpPorts() {
        StringJoiner ports = new StringJoiner(" ");
        running.forEach((name, node) -> ports.add(name + "=" + httpPort(node)));
        return ports.toString();
    }

    private static int httpPort(Node node) {
        return node.injector().getInstance(HttpServerTransport.class).boundAddress().publishAddress().getPort();
    }

    /** Node's constructor that takes classpath plugins is protected: this is its only opening. */
    private static final class ClusterNode extends Node {
        ClusterNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }
}
