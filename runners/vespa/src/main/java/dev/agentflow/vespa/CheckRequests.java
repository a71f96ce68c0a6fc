package dev.agentflow.vespa;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.yahoo.component.chain.Chain;
import com.yahoo.config.ConfigInstance;
import com.yahoo.container.QrSearchersConfig;
import com.yahoo.document.DocumentTypeManager;
import com.yahoo.document.config.DocumentmanagerConfig;
import com.yahoo.document.json.DocumentOperationType;
import com.yahoo.document.json.JsonReader;
import com.yahoo.language.Linguistics;
import com.yahoo.language.opennlp.OpenNlpLinguistics;
import com.yahoo.prelude.IndexFacts;
import com.yahoo.prelude.IndexModel;
import com.yahoo.prelude.querytransform.NormalizingSearcher;
import com.yahoo.prelude.querytransform.StemmingSearcher;
import com.yahoo.search.Query;
import com.yahoo.search.Result;
import com.yahoo.search.Searcher;
import com.yahoo.search.config.IndexInfoConfig;
import com.yahoo.search.config.SchemaInfoConfig;
import com.yahoo.search.querytransform.LowercasingConfig;
import com.yahoo.search.querytransform.VespaLowercasingSearcher;
import com.yahoo.search.querytransform.WeakAndReplacementSearcher;
import com.yahoo.search.result.ErrorMessage;
import com.yahoo.search.schema.SchemaInfo;
import com.yahoo.search.searchchain.Execution;
import com.yahoo.search.searchers.OpportunisticWeakAndSearcher;
import com.yahoo.search.searchers.QueryValidator;
import com.yahoo.search.searchers.ValidateFuzzySearcher;
import com.yahoo.search.searchers.ValidateMatchPhaseSearcher;
import com.yahoo.search.searchers.ValidateNearestNeighborSearcher;
import com.yahoo.search.searchers.ValidateSameElementSearcher;
import com.yahoo.search.yql.MinimalQueryInserter;
import com.yahoo.vespa.config.search.AttributesConfig;
import com.yahoo.vespa.model.VespaModel;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;

/**
 * Checks agentflow's Vespa requests with Vespa's own container code, for the tests' protocol server.
 *
 * Queries: the POST body becomes request properties through the search handler's own JSON reader
 * (Json2SingleLevelMap), a Query is built with the SchemaInfo a container of this package gets
 * (so `input.query(q)` is parsed as its declared tensor type), and run through the searchers of
 * the default chain that parse and validate: MinimalQueryInserter (YQL, userInput) with the
 * package's IndexFacts and OpenNLP linguistics, then the content cluster chain's validators,
 * stemming, normalizing and lowercasing. The chain ends before ClusterSearcher, which would send
 * the query to content nodes; its rank-profile check is repeated here from SchemaInfo.
 *
 * Feeds: the document/v1 body is read by Vespa's document JSON reader (JsonReader) with the
 * package's document types, as a put of the given document id.
 *
 * Every config (IndexInfo, SchemaInfo, QrSearchers, Attributes, Lowercasing, Documentmanager) is
 * taken from the VespaModel that ValidatePackage builds, at the config id of the component that
 * reads it in a real container, so the checks see what a deployed container would see.
 *
 * Usage: CheckRequests. Listens on a loopback port, prints "LISTENING <port>", and answers one
 * JSON object per line on each connection:
 *   {"op": "query", "app": DIR, "body": {...}}        -> {"ok": true} or {"ok": false, "code", "summary", "message"}
 *   {"op": "feed", "app": DIR, "id": DOCID, "body": {...}} -> {"ok": true} or {"ok": false, "message"}
 *   {"op": "stats"}   -> {"version", "queries", "feeds", "rejected_queries", "rejected_feeds", "rejected_from_agentflow"}
 * A query or feed may carry "source": "agentflow"; rejections of those are listed in the stats.
 * DIR is an application package directory, built once per directory. Exits when stdin closes, so
 * the JVM never outlives the test process that started it.
 */
public final class CheckRequests {

  static final ObjectMapper JSON = new ObjectMapper();
  static final JsonFactory JSON_FACTORY = new JsonFactory();

  final Map<String, App> apps = new ConcurrentHashMap<>();
  final AtomicLong queries = new AtomicLong(), feeds = new AtomicLong();
  final AtomicLong rejectedQueries = new AtomicLong(), rejectedFeeds = new AtomicLong();
  /** Rejections of requests marked "source": "agentflow" (sent by agentflow's store, not a test's raw client). */
  final java.util.List<String> rejectedFromAgentflow = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
  final Linguistics linguistics = new OpenNlpLinguistics();

  public static void main(String[] args) throws Exception {
    java.util.logging.LogManager.getLogManager().reset();
    CheckRequests checker = new CheckRequests();
    ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    System.out.println("LISTENING " + server.getLocalPort());
    System.out.flush();
    Thread watchdog = new Thread(() -> {
      try {
        while (System.in.read() >= 0) { }
      } catch (Exception ignored) { }
      System.exit(0);
    });
    watchdog.setDaemon(true);
    watchdog.start();
    while (true) {
      Socket socket = server.accept();
      Thread t = new Thread(() -> checker.serve(socket));
      t.setDaemon(true);
      t.start();
    }
  }

  void serve(Socket socket) {
    try (socket;
         BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
         PrintWriter out = new PrintWriter(new OutputStreamWriter(socket.getOutputStream(), StandardCharsets.UTF_8))) {
      for (String line; (line = in.readLine()) != null; ) {
        ObjectNode answer;
        try {
          answer = handle(JSON.readTree(line));
        } catch (Throwable e) {
          if (System.getenv("VESPA_VALIDATE_TRACE") != null) e.printStackTrace();
          answer = JSON.createObjectNode().put("ok", false).put("internal", true)
                       .put("message", "checker failed: " + ValidatePackage.messageOf(e));
        }
        out.println(JSON.writeValueAsString(answer));
        out.flush();
      }
    } catch (Exception ignored) {
      // the client went away
    }
  }

  ObjectNode handle(JsonNode request) throws Exception {
    String op = request.path("op").asText();
    if (op.equals("stats")) {
      return JSON.createObjectNode().put("version", ValidatePackage.VERSION.toFullString())
                 .put("queries", queries.get()).put("feeds", feeds.get())
                 .put("rejected_queries", rejectedQueries.get()).put("rejected_feeds", rejectedFeeds.get())
                 .set("rejected_from_agentflow", JSON.valueToTree(List.copyOf(rejectedFromAgentflow)));
    }
    App app = apps.computeIfAbsent(request.path("app").asText(), dir -> App.load(dir, linguistics));
    byte[] body = JSON.writeValueAsBytes(request.path("body"));
    ObjectNode answer;
    if (op.equals("query")) {
      queries.incrementAndGet();
      answer = app.checkQuery(body);
      if (!answer.path("ok").asBoolean()) rejectedQueries.incrementAndGet();
    } else if (op.equals("feed")) {
      feeds.incrementAndGet();
      answer = app.checkFeed(request.path("id").asText(), body);
      if (!answer.path("ok").asBoolean()) rejectedFeeds.incrementAndGet();
    } else {
      throw new IllegalArgumentException("unknown op '" + op + "'; expected query, feed or stats");
    }
    if (!answer.path("ok").asBoolean() && request.path("source").asText().equals("agentflow"))
      rejectedFromAgentflow.add(op + ": " + answer.path("message").asText() + " <- " + new String(body, StandardCharsets.UTF_8));
    return answer;
  }

  /** One application package's container view: index facts, schema info, searchers and document types. */
  static final class App {
    final IndexFacts indexFacts;
    final SchemaInfo schemaInfo;
    final Linguistics linguistics;
    final Chain<Searcher> chain;
    final DocumentTypeManager documentTypes;

    App(VespaModel model, Linguistics linguistics) {
      String container = model.getContainerClusters().keySet().iterator().next();
      String content = model.getContentClusters().keySet().iterator().next();
      String vespa = container + "/searchchains/chain/vespa/component/";
      String cluster = container + "/searchchains/chain/" + content + "/component/";
      QrSearchersConfig searchers = config(model, QrSearchersConfig.class, vespa + MinimalQueryInserter.class.getName());
      this.indexFacts = new IndexFacts(new IndexModel(
          config(model, IndexInfoConfig.class, vespa + MinimalQueryInserter.class.getName()), searchers)).freeze();
      this.schemaInfo = new SchemaInfo(
          config(model, SchemaInfoConfig.class, vespa + MinimalQueryInserter.class.getName()), searchers);
      this.linguistics = linguistics;
      AttributesConfig nnAttributes = config(model, AttributesConfig.class,
                                             cluster + ValidateNearestNeighborSearcher.class.getName());
      AttributesConfig matchPhaseAttributes = config(model, AttributesConfig.class,
                                                     cluster + ValidateMatchPhaseSearcher.class.getName());
      LowercasingConfig lowercasing = config(model, LowercasingConfig.class,
                                             cluster + VespaLowercasingSearcher.class.getName());
      this.chain = new Chain<>(
          // the "vespa" chain's query-building searchers
          new MinimalQueryInserter(linguistics), new WeakAndReplacementSearcher(), new OpportunisticWeakAndSearcher(),
          // the content cluster's chain up to ClusterSearcher
          new QueryValidator(), new ValidateFuzzySearcher(), new ValidateSameElementSearcher(),
          new ValidateNearestNeighborSearcher(nnAttributes), new ValidateMatchPhaseSearcher(matchPhaseAttributes),
          new StemmingSearcher(linguistics), new NormalizingSearcher(linguistics),
          new VespaLowercasingSearcher(lowercasing), new RankProfileCheck(schemaInfo));
      this.documentTypes = new DocumentTypeManager(config(model, DocumentmanagerConfig.class,
                                                          container + "/docprocchains/chain/indexing"));
    }

    static App load(String dir, Linguistics linguistics) {
      try {
        Path work = Files.createTempDirectory("vespa-app-");
        try {
          ValidatePackage.copyTree(new File(dir).toPath(), work);
          ValidatePackage.Built built = ValidatePackage.build(work.toFile(), (level, message) -> {
            // The native rank-setup verifier is absent here; ValidatePackage's tests say so already.
            if (level.intValue() >= Level.WARNING.intValue() && !message.contains("vespa-verify-ranksetup"))
              System.err.println(level.getName() + ": " + message);
          });
          return new App(built.model(), linguistics);
        } finally {
          ValidatePackage.deleteTree(work);
        }
      } catch (Exception e) {
        throw new IllegalStateException("could not load application package " + dir + ": "
                                        + ValidatePackage.messageOf(e), e);
      }
    }

    static <T extends ConfigInstance> T config(VespaModel model, Class<T> type, String configId) {
      T config = model.getConfig(type, configId);
      if (config == null) throw new IllegalStateException("no " + type.getSimpleName() + " at " + configId);
      return config;
    }

    ObjectNode checkQuery(byte[] body) {
      try {
        Query query = new Query.Builder().setRequestMap(requestMap(body)).setSchemaInfo(schemaInfo).build();
        Execution execution = new Execution(chain, Execution.Context.createContextStub(
            null, indexFacts, schemaInfo, linguistics));
        Result result = execution.search(query);
        ErrorMessage error = result.hits().getError();
        if (error != null) return rejected(error.getCode(), error.getMessage(), error.getDetailedMessage());
        return JSON.createObjectNode().put("ok", true).put("querytree", query.getModel().getQueryTree().toString());
      } catch (IllegalArgumentException e) {  // what SearchHandler answers with 400 INVALID_QUERY_PARAMETER
        ErrorMessage error = ErrorMessage.createInvalidQueryParameter(ValidatePackage.messageOf(e));
        return rejected(error.getCode(), error.getMessage(), error.getDetailedMessage());
      }
    }

    ObjectNode checkFeed(String documentId, byte[] body) {
      try (InputStream in = new ByteArrayInputStream(body)) {
        new JsonReader(documentTypes, in, JSON_FACTORY).readSingleDocumentStreaming(DocumentOperationType.PUT,
                                                                                     documentId);
        return JSON.createObjectNode().put("ok", true);
      } catch (Exception e) {  // document/v1 answers 400 with this message
        if (System.getenv("VESPA_VALIDATE_TRACE") != null) e.printStackTrace();
        return JSON.createObjectNode().put("ok", false).put("message", ValidatePackage.messageOf(e));
      }
    }

    static ObjectNode rejected(int code, String summary, String message) {
      return JSON.createObjectNode().put("ok", false).put("code", code).put("summary", summary)
                 .put("message", message);
    }

    /** The search handler's POST body to request-property conversion (package-private in Vespa). */
    @SuppressWarnings("unchecked")
    static Map<String, String> requestMap(byte[] body) {
      try {
        Class<?> type = Class.forName("com.yahoo.search.handler.Json2SingleLevelMap");
        Constructor<?> constructor = type.getDeclaredConstructor(InputStream.class);
        constructor.setAccessible(true);
        Method parse = type.getDeclaredMethod("parse");
        parse.setAccessible(true);
        return (Map<String, String>) parse.invoke(constructor.newInstance(new ByteArrayInputStream(body)));
      } catch (java.lang.reflect.InvocationTargetException e) {
        throw new IllegalArgumentException(ValidatePackage.messageOf(e.getCause()), e.getCause());
      } catch (ReflectiveOperationException e) {
        throw new IllegalStateException("Json2SingleLevelMap is not as expected in this Vespa version", e);
      }
    }
  }

  /**
   * Ends the chain where ClusterSearcher would dispatch to content nodes, checking what it checks
   * first: that the rank profile exists in the schemas searched.
   */
  static final class RankProfileCheck extends Searcher {
    final SchemaInfo schemaInfo;

    RankProfileCheck(SchemaInfo schemaInfo) {
      this.schemaInfo = schemaInfo;
    }

    @Override
    public Result search(Query query, Execution execution) {
      String profile = query.getRanking().getProfile();
      for (var schema : schemaInfo.schemas().values()) {
        if (!schema.rankProfiles().containsKey(profile))
          return new Result(query, ErrorMessage.createInvalidQueryParameter(
              "Requested rank profile '" + profile + "' is undefined for document type '" + schema.name() + "'"));
      }
      return new Result(query);
    }
  }
}
