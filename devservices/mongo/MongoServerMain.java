// Launcher of mongo-java-server (de.bwaldvogel:mongo-java-server, in-memory backend) for
// devservices/services.sh: a MongoDB wire-protocol server for development and tests.
//
// Usage: java -cp <classpath> MongoServerMain HOST PORT
//
// Data lives only in this JVM's heap: every start is an empty server, and stopping the process
// discards everything. Prints one "mongo-java-server ... listening on HOST:PORT" line once bound.

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.util.List;

public final class MongoServerMain {

    /**
     * The server version reported by {@code isMaster} and {@code buildInfo}.
     *
     * <p>Why this shim exists: mongo-java-server 1.47.0's newest built-in version
     * ({@code ServerVersion.MONGO_5_0}, also the default) reports maxWireVersion 8, and pymongo
     * 4.20 refuses such servers ("reports wire version 8, but this version of PyMongo requires at
     * least 9"). In 1.47.0 the version is only echoed in those two replies; it switches no
     * behaviour on or off. So we report MongoDB 5.0.0 with its real wire version, 13, which is
     * also the feature level the server models.
     */
    private enum ReportedVersion implements MongoVersion {
        MONGO_5_0_WIRE_13;

        @Override
        public List<Integer> getVersionArray() {
            return List.of(5, 0, 0);
        }

        @Override
        public int getWireVersion() {
            return 13;
        }
    }

    private MongoServerMain() {}

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 2) {
            System.err.println("usage: MongoServerMain HOST PORT");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);

        MongoServer server =
                new MongoServer(new MemoryBackend().version(ReportedVersion.MONGO_5_0_WIRE_13));
        // SIGTERM (services.sh stop) runs this: close client connections and the listener.
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow, "mongo-shutdown"));
        try {
            server.bind(host, port);
        } catch (Exception e) { // e.g. java.net.BindException, thrown unchecked by netty
            // Exit explicitly: netty's non-daemon threads would otherwise keep the JVM alive.
            System.err.println(
                    "mongo-java-server: cannot listen on " + host + ":" + port + ": " + e);
            System.exit(1);
        }
        System.out.println("mongo-java-server (in memory, reports MongoDB 5.0.0 / wire 13)"
                + " listening on " + host + ":" + port);
        System.out.flush();
        // Serve until the JVM is told to stop (SIGTERM/SIGINT run the hook above).
        Thread.currentThread().join();
    }
}
