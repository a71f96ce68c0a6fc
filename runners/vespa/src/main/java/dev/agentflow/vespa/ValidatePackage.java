package dev.agentflow.vespa;

import ai.vespa.rankingexpression.importer.lightgbm.LightGBMImporter;
import ai.vespa.rankingexpression.importer.onnx.OnnxImporter;
import ai.vespa.rankingexpression.importer.vespa.VespaImporter;
import ai.vespa.rankingexpression.importer.xgboost.XGBoostImporter;
import com.yahoo.component.Version;
import com.yahoo.component.Vtag;
import com.yahoo.config.application.api.ApplicationPackage;
import com.yahoo.config.application.api.DeployLogger;
import com.yahoo.config.model.NullConfigModelRegistry;
import com.yahoo.config.model.api.ValidationParameters;
import com.yahoo.config.model.api.ValidationParameters.CheckRouting;
import com.yahoo.config.model.api.ValidationParameters.FailOnIncompatibleChange;
import com.yahoo.config.model.api.ValidationParameters.IgnoreValidationErrors;
import com.yahoo.config.model.application.provider.ApplicationPackageXmlFilesValidator;
import com.yahoo.config.model.application.provider.FilesApplicationPackage;
import com.yahoo.config.model.deploy.DeployState;
import com.yahoo.config.model.deploy.TestProperties;
import com.yahoo.config.provision.Zone;
import com.yahoo.vespa.model.VespaModel;
import com.yahoo.vespa.model.application.validation.Validation;
import com.yahoo.vespa.model.search.DocumentDatabase;
import com.yahoo.vespa.model.search.SearchCluster;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.stream.Stream;

/**
 * Validates a Vespa application package directory with Vespa's own config model, the way a
 * self-hosted config server prepares a deployment (VespaModelFactory.createAndValidateModel):
 * the XML files against Vespa's RELAX NG schemas, preprocessing, the schemas (.sd) parsed and
 * derived by ApplicationBuilder with validation on, the VespaModel built (clusters, document
 * databases, rank profiles, HNSW indexes) and every model validator run, routing included.
 *
 * Usage: ValidatePackage DIR. Exit 0 and "OK ..." when Vespa accepts the package; exit 1 with
 * Vespa's message on stderr when it does not; exit 2 on usage errors. Deploy-log warnings go to
 * stderr as "WARNING: ...". The package directory is not modified (work happens on a copy).
 *
 * Not covered: vespa-verify-ranksetup, the C++ rank-setup check the config server also runs,
 * is a native binary of a Vespa installation; where it is absent Vespa itself only warns.
 */
public final class ValidatePackage {

  /** The version of the config model on the class path (what a config server of that version runs). */
  static final Version VERSION = Vtag.currentVersion;

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: ValidatePackage APPLICATION_PACKAGE_DIR");
      System.exit(2);
    }
    File dir = new File(args[0]).getAbsoluteFile();
    if (!new File(dir, "services.xml").isFile()) {
      System.err.println("not an application package (no services.xml): " + dir);
      System.exit(2);
    }
    // Keep the JDK logging of Vespa's internals quiet; what matters goes through the DeployLogger.
    java.util.logging.LogManager.getLogManager().reset();
    Path work = Files.createTempDirectory("vespa-app-");
    try {
      copyTree(dir.toPath(), work);
      String summary = validate(work.toFile());
      System.out.println("OK " + dir + ": " + summary);
    } catch (Throwable e) {
      if (System.getenv("VESPA_VALIDATE_TRACE") != null) e.printStackTrace();
      System.err.println("INVALID " + dir + ": " + messageOf(e));
      System.exit(1);
    } finally {
      deleteTree(work);
    }
  }

  /** What the config server does on prepare, on the package in `dir` (which it may write to). */
  static Built build(File dir, DeployLogger logger) throws Exception {
    ValidationParameters strict = new ValidationParameters(
        IgnoreValidationErrors.FALSE, FailOnIncompatibleChange.TRUE, CheckRouting.TRUE);
    FilesApplicationPackage files = FilesApplicationPackage.fromDir(dir, Map.of());
    // What the config server does on prepare: XML files against the RELAX NG schemas of this
    // Vespa version, file extensions, then preprocessing (deployment-specific XML variants).
    ApplicationPackageXmlFilesValidator xml = ApplicationPackageXmlFilesValidator.create(dir, VERSION);
    xml.checkApplication();
    xml.checkIncludedDirs(files);
    files.validateFileExtensions();
    ApplicationPackage app = files.preprocess(Zone.defaultZone(), logger);
    DeployState state = new DeployState.Builder()
        .applicationPackage(app)
        .deployLogger(logger)
        .zone(Zone.defaultZone())
        .properties(new TestProperties())  // self-hosted defaults (hostedVespa false)
        .vespaVersion(VERSION)
        .wantedNodeVespaVersion(VERSION)
        .modelImporters(List.of(new VespaImporter(), new OnnxImporter(), new XGBoostImporter(), new LightGBMImporter()))
        .build(strict);  // parses and derives the schemas with validation on
    VespaModel model = new VespaModel(new NullConfigModelRegistry(), state);
    new Validation().validate(model, strict, state);
    return new Built(model, state);
  }

  /** A built and validated model with the deploy state it came from. */
  record Built(VespaModel model, DeployState state) {}

  static String validate(File dir) throws Exception {
    DeployLogger logger = (level, message) -> {
      if (level.intValue() >= Level.WARNING.intValue()) System.err.println(level.getName() + ": " + message);
    };
    Built built = build(dir, logger);
    VespaModel model = built.model();
    DeployState state = built.state();
    StringBuilder out = new StringBuilder("vespa ").append(state.getVespaVersion());
    for (SearchCluster cluster : model.getSearchClusters())
      for (DocumentDatabase db : cluster.getDocumentDbs()) {
        var schema = db.getDerivedConfiguration().getSchema();
        out.append(", schema ").append(schema.getName()).append(" in ").append(cluster.getClusterName())
           .append(" (rank profiles ")
           .append(String.join(" ", state.rankProfileRegistry().rankProfilesOf(schema).stream()
                                         .map(p -> p.name()).sorted().toList()))
           .append(")");
      }
    return out.toString();
  }

  static String messageOf(Throwable e) {
    StringBuilder out = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      String m = t.getMessage();
      if (m == null || out.indexOf(m) >= 0) continue;
      if (out.length() > 0) out.append(": ");
      out.append(m);
    }
    return out.length() > 0 ? out.toString() : e.toString();
  }

  static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> paths = Files.walk(from)) {
      for (Path p : (Iterable<Path>) paths::iterator) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) Files.createDirectories(target);
        else Files.copy(p, target, StandardCopyOption.REPLACE_EXISTING);
      }
    }
  }

  static void deleteTree(Path root) throws IOException {
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path p : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator) Files.deleteIfExists(p);
    }
  }
}
