package dev.agentflow.flink;

import java.util.Collections;
import org.apache.beam.sdk.util.construction.resources.PipelineResourcesDetector;

/**
 * Stages no jars with a job, for a Flink cluster whose own classpath holds the runner's jars
 * (runners/flink/cluster.sh starts one). By default the job server uploads every jar of its
 * classpath with each pipeline (about 240, stored again in every TaskManager's blob cache).
 * Chosen with {@code --pipeline_resources_detector_factory_class dev.agentflow.flink.ClusterClasspath}.
 */
public class ClusterClasspath implements PipelineResourcesDetector.Factory {
  /** Beam builds the factory through this method (InstanceBuilder.fromFactoryMethod("create")). */
  public static ClusterClasspath create() {
    return new ClusterClasspath();
  }

  @Override
  public PipelineResourcesDetector getPipelineResourcesDetector() {
    return classLoader -> Collections.emptyList();
  }
}
